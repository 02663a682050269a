"""Durability: 1,000 devices register and are observed, the server is SIGKILLed and
restarted, and it serves every registration and observation again. And queued requests
caught in flight by a SIGKILL: sent again (at least once), or never (at most once)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiocoap
from aiocoap.numbers.codes import Code as C

from .aiocoap_device import AiocoapDevice, started_device, wait_for

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
    async def start(cls, data_dir: Path, port: int, awake_time: float = 93.0
                    ) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.server.server_process", str(data_dir), str(port),
            str(awake_time),
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


class SlowExecuteDevice(AiocoapDevice):
    """Carries out an Execute at once but holds back its first answer, so that the server
    can be killed between sending the request and storing its result."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.held = False

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        response = await super().render(request)
        if request.code == C.POST and len(request.opt.uri_path) == 3 and not self.held:
            self.held = True
            await asyncio.sleep(30)
        return response


async def test_sigkill_mid_flight_queued_execute_at_most_once_runs_once(tmp_path: Path
                                                                        ) -> None:
    port = free_udp_port()
    server = await ServerProcess.start(tmp_path, port, awake_time=0.5)
    once, twice = SlowExecuteDevice("once"), SlowExecuteDevice("twice")
    devices = [once, twice]
    try:
        await server.line()
        for d in devices:
            await d.start()
            assert (await d.register(f"coap://[::1]:{port}", 3600, queue=True)).code == (
                C.CREATED)
        await asyncio.sleep(2.0)  # past the awake time: both sleep
        queued = {}
        for d, amo in ((once, True), (twice, False)):
            await server.command({"execute": "/3/0/4", "endpoint": d.endpoint,
                                  "at_most_once": amo})
            answer = await server.line()
            assert "queued" in answer, answer
            queued[d.endpoint] = answer["queued"]
        # They wake; each gets its Execute and carries it out, and the server is killed
        # before either answer arrives.
        for d in devices:
            assert (await d.update()).code == C.CHANGED
        await wait_for(lambda: all(len(d.state.executed) == 1 for d in devices), 10)
        # Let the devices' empty ACKs reach the server first: an ACK that meets a closed
        # port makes aiocoap on uvloop give up on that address for good.
        await asyncio.sleep(0.5)
        await server.kill()

        server = await ServerProcess.start(tmp_path, port, awake_time=0.5)
        await server.line()
        records = {}
        for ep, rid in queued.items():
            await server.command({"queued": rid})
            records[ep] = (await server.line())["record"]
        assert records["once"]["state"] == "failed" and records["once"]["amo"] is True
        assert records["once"]["result"]["outcome"] == "unknown"
        assert records["twice"]["state"] == "pending" and records["twice"]["amo"] is False
        # They wake again: the at-least-once Execute runs a second time, the at-most-once
        # one never does.
        for d in devices:
            assert (await d.update()).code == C.CHANGED
        await wait_for(lambda: len(twice.state.executed) == 2, 10)
        await server.command({"queued": queued["twice"]})
        assert (await server.line())["record"]["state"] == "done"
        assert once.state.executed == [("/3/0/4", "")]
    finally:
        if server.proc.returncode is None:
            await server.kill()
        await asyncio.gather(*(d.stop() for d in devices))
