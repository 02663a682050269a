"""The aiolwm2m LwM2M server as a benchmark target: ``python lwm2m_server_target.py STORE``.

STORE is ``sqlite`` (durable: every 2.01 waits for its group commit) or ``memory``. With
``--all-transports`` it also serves DTLS and TCP on ephemeral ports, named on its ready line
(``tcp=PORT dtls=PORT``), as ``aiolwm2m server`` does by default.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from aiolwm2m import compiled
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.collector import tune_for_server


async def run(store: str, all_transports: bool) -> None:
    tune_for_server()  # as ``aiolwm2m server`` does
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-bench-") as tmp:
        extra_port = 0 if all_transports else None
        server = LwM2MServer(ServerConfig(
            host="127.0.0.1", port=0, store=store, data_dir=Path(tmp),
            sqlite_synchronous=os.environ.get("AIOLWM2M_BENCH_SYNCHRONOUS", "FULL"),
            coaps_port=extra_port, tcp_port=extra_port))
        await server.start()
        core = "compiled (mypyc)" if compiled.in_use() else "plain Python"
        ports = (f"tcp={server.port_of('tcp')} dtls={server.port_of('dtls')} "
                 if all_transports else "")
        print(f"ready {server.port} {ports}request path: {core}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()


if __name__ == "__main__":
    store = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    everything = "--all-transports" in sys.argv
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(run(store, everything))
    else:
        asyncio.run(run(store, everything))
