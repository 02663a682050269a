"""The LwM2M server with its REST API as a benchmark target.

    python rest_server_target.py [--http-server product|hypercorn|uvicorn|granian]
                                 [--store sqlite|memory] [--event-loop uvloop|asyncio]

Prints ``ready COAP_PORT HTTP_PORT http=NAME core=...`` once both listen; the API token is
``bench-token``. ``product`` serves the app as ``aiolwm2m server`` does
(:class:`aiolwm2m.web.serve.WebServer`); the others serve the same app in the same event
loop through each server's own embedding API, to compare them (``uvicorn`` and ``granian``
must be installed in the environment for that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from aiolwm2m import compiled
from aiolwm2m.cli import event_loop
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.collector import tune_for_server
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

TOKEN = "bench-token"


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_hypercorn(app: Any, sock: socket.socket) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = None
    config.errorlog = None
    await serve(app, config, shutdown_trigger=asyncio.Event().wait)


async def serve_uvicorn(app: Any, sock: socket.socket) -> None:
    import uvicorn

    class Embedded(uvicorn.Server):
        def capture_signals(self) -> contextlib.nullcontext[None]:  # the process's own
            return contextlib.nullcontext()

    await Embedded(uvicorn.Config(app, loop="none", http="httptools", lifespan="off",
                                  access_log=False, log_level="warning",
                                  proxy_headers=False)).serve(sockets=[sock])


async def serve_granian(app: Any, sock: socket.socket) -> None:
    from granian._granian import SocketHolder
    from granian.constants import Interfaces
    from granian.server.embed import Server

    class OnOurSocket(Server):  # type: ignore[misc]
        def _init_shared_socket(self) -> None:  # the socket bound here, not a new one
            self._shd = SocketHolder(os.dup(sock.fileno()), False, 1024)
            self._sfd = self._shd.get_fd()

    await OnOurSocket(app, address="127.0.0.1", port=sock.getsockname()[1],
                      interface=Interfaces.ASGINL, log_enabled=False).serve()


ADAPTERS = {"hypercorn": serve_hypercorn, "uvicorn": serve_uvicorn, "granian": serve_granian}


async def run(args: argparse.Namespace) -> None:
    tune_for_server()  # as ``aiolwm2m server`` does
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-rest-") as tmp:
        server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store=args.store,
                                          data_dir=Path(tmp)))
        await server.start()
        app = create_app(server, [TOKEN])
        web: WebServer | None = None
        task: asyncio.Task[None] | None = None
        if args.http_server == "product":
            web = WebServer(app, "127.0.0.1", 0)
            await web.start()
            port = web.port
        else:
            sock = listening_socket()
            port = sock.getsockname()[1]
            task = asyncio.create_task(ADAPTERS[args.http_server](app, sock))
            await asyncio.sleep(0.5)
        core = "compiled" if compiled.in_use() else "plain-python"
        print(f"ready {server.port} {port} http={args.http_server} core={core} "
              f"loop={event_loop.running()}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            if task is not None:
                task.cancel()
            if web is not None:
                await web.stop()
            await server.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--http-server", choices=["product", *ADAPTERS], default="product")
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--event-loop", choices=["uvloop", "asyncio"], default=None)
    args = p.parse_args()
    event_loop.run(run(args), event_loop.resolve(args.event_loop))


if __name__ == "__main__":
    main()
