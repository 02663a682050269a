"""Durability: 1,000 devices register and are observed, the server is SIGKILLed and
restarted, and it serves every registration and observation again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from aiocoap.numbers.codes import Code as C

from .aiocoap_device import AiocoapDevice, started_device

N = int(os.environ.get("RESTART_N", "1000"))
HERE = Path(__file__).resolve().parent


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, data_dir: Path, port: int) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.server.server_process", str(data_dir), str(port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            cwd=HERE.parents[1])
        return cls(proc)

    async def line(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert raw, "server process exited"
        result: dict[str, Any] = json.loads(raw)
        return result

    async def command(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


async def test_sigkill_restart_keeps_registrations_and_observations(tmp_path: Path) -> None:
    port = free_udp_port()
    server = await ServerProcess.start(tmp_path, port)
    devices: list[AiocoapDevice] = []
    try:
        ready = await server.line()
        assert ready == {"ready": True, "registrations": 0, "observations": 0}
        devices = list(await asyncio.gather(*(started_device(f"dev-{i:04d}")
                                              for i in range(N))))
        sem = asyncio.Semaphore(100)

        async def register(d: AiocoapDevice) -> Any:
            async with sem:
                return (await d.register(f"coap://[::1]:{port}", lifetime=3600)).code

        codes = await asyncio.gather(*(register(d) for d in devices))
        assert codes.count(C.CREATED) == N
        await server.command({"observe_all": "/3303/0/5700"})
        assert await server.line(60) == {"observed": N}

        await server.kill()
        server = await ServerProcess.start(tmp_path, port)
        ready = await server.line()
        assert ready == {"ready": True, "registrations": N, "observations": N}

        # Observations resumed: notifications from devices reach the new process.
        for i, d in enumerate(devices[:5]):
            d.set_value("/3303/0/5700", 40.0 + i)
        seen = {}
        while len(seen) < 5:
            msg = await server.line(10)
            seen[msg["notification"]] = msg["value"]
        assert seen == {f"dev-{i:04d}": 40.0 + i for i in range(5)}
        # Registrations resumed: the devices' locations are still valid.
        assert (await devices[7].update("lt=3600")).code == C.CHANGED
        await server.command({"count": True})
        assert await server.line() == {"registrations": N, "observations": N}
    finally:
        if server.proc.returncode is None:
            await server.kill()
        await asyncio.gather(*(d.stop() for d in devices))
