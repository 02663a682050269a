"""Serving the ASGI app with uvicorn (httptools) inside the server's event loop.

Measured with ``bench/bench_rest.py`` on the same app, uvicorn with the httptools parser
took a fraction of Hypercorn's CPU per request (Hypercorn parses HTTP in pure Python with
h11), about as little as granian, whose embedded mode is experimental and answers from
threads of its own that must take the GIL for every request. uvicorn runs in this loop,
uvloop or asyncio alike, with nothing but the loop's own transports.

What uvicorn does not bound by itself is bounded by :mod:`.http_limits`: how long and how
large a request's head may be.

With a certificate chain and key the port serves HTTPS only (TLS 1.2 and later, ALPN
``http/1.1``): the REST API, the web UI and firmware downloads alike, through
:mod:`.tls_listener` (uvicorn's own TLS listener has no bound on handshakes).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from .http_limits import HttpLimits, LimitedHttpToolsProtocol, limited_protocol
from .sse_fanout import SseFanout
from .tls_listener import TlsListener


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to the process (the CLI handles Ctrl-C); uvicorn's own handlers
        # would take them over while it serves.
        yield


def https_context(certificate: Path, private_key: Path) -> ssl.SSLContext:
    """The server side of HTTPS with ``certificate`` (a PEM chain, leaf first) and its
    ``private_key``; ValueError names the file that would not load and why."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    for path in (certificate, private_key):
        if not path.is_file():
            raise ValueError(f"{path} is not a readable file")
    try:
        context.load_cert_chain(certificate, private_key)
    except ssl.SSLError as e:
        raise ValueError(f"{certificate} with {private_key} is not a PEM certificate chain "
                         f"and its private key ({e.reason or e})") from None
    except OSError as e:
        raise ValueError(f"cannot read {certificate} or {private_key}: "
                         f"{e.strerror or e}") from None
    return context


class WebServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080,
                 limits: HttpLimits | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or HttpLimits()
        #: HTTPS when set (see :func:`https_context`).
        self.tls = tls
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.tls_listener: TlsListener | None = None

    async def start(self) -> None:
        """Bind now (so a busy port fails here, not later) and serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, loop="none", http=limited_protocol(self.limits), lifespan="off",
            access_log=False, log_level="warning", proxy_headers=False, server_header=False,
            timeout_keep_alive=int(self.limits.keep_alive_timeout),
            # What a response may still take at shutdown (event streams end at once).
            timeout_graceful_shutdown=1)
        self._server = server = _EmbeddedServer(config)
        # Over TLS, uvicorn listens on nothing and the listener here hands it connections.
        self._task = asyncio.create_task(server.serve(sockets=[] if self.tls else [sock]))
        # Listening happens in the task's first steps; wait for it (or its failure).
        while not server.started and not self._task.done():
            await asyncio.sleep(0.001)
        if self._task.done():
            self._task.result()
        if self.tls is not None:
            await self._listen_tls(server, sock)

    async def _listen_tls(self, server: _EmbeddedServer, sock: socket.socket) -> None:
        assert self.tls is not None
        config = server.config

        def protocol(on_lost: Callable[[], None]) -> asyncio.Protocol:
            # What uvicorn's own listener makes for each connection.
            made = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server.server_state,
                app_state=server.lifespan.state)
            assert isinstance(made, LimitedHttpToolsProtocol)
            made.on_lost = on_lost
            return made

        self.tls_listener = TlsListener(self.tls, self.limits, protocol)
        self.tls_listener.start(sock)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    async def stop(self) -> None:
        # Event streams never end by themselves: end them, so that their responses
        # complete before the server stops waiting for them.
        fanout = getattr(self.app.state, "sse", None)
        if isinstance(fanout, SseFanout):
            fanout.end_streams()
        if self._server is not None:
            self._server.should_exit = True
        if self.tls_listener is not None:
            await self.tls_listener.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
        if self._sock is not None:
            self._sock.close()
