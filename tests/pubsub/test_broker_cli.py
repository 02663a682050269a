"""``aiolwm2m broker`` as a user runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

from aiolwm2m.coap.codes import Code
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import Client


async def start(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "broker", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError("broker exited: " + "".join(lines) + err.decode())
        lines.append(line)
        if line.lstrip().startswith("data"):
            return "".join(lines)


async def test_runs_keeps_topics_and_stops(tmp_path: Path) -> None:
    for round_ in range(2):
        proc = await start("--host", "127.0.0.1", "--port", "0", "--data-dir",
                           str(tmp_path / "d"), cwd=tmp_path)
        try:
            text = await banner(proc)
            assert "draft-ietf-core-coap-pubsub-21" in text
            found = re.search(r"udp 127\.0\.0\.1:(\d+)", text)
            assert found is not None
            client = Client(await UdpEndpoint.create("127.0.0.1", 0), int(found.group(1)))
            try:
                if round_ == 0:
                    assert "0 topics loaded" in text
                    _, data = await client.create_topic("cli")
                    assert (await client.publish(data, b"7")).code == Code.CREATED
                else:
                    assert "1 topics loaded" in text
                    reply = await client.send(Code.GET, "ps", query=("rt=core.ps.data",))
                    data = reply.payload.decode().split(">")[0][1:]
                    assert (await client.send(Code.GET, data)).payload == b"7"
            finally:
                await client.endpoint.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert (tmp_path / "d" / "pubsub.sqlite3").exists()


async def test_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = await start("--host", "127.0.0.1", "--port", str(port), "--store", "memory",
                           cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert err.decode().strip() == (f"aiolwm2m broker: cannot listen on udp 127.0.0.1:{port}: "
                                    "the port is already in use")


async def test_bad_limit_is_one_line(tmp_path: Path) -> None:
    proc = await start("--broker-max-topics", "0", "--store", "memory", cwd=tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert err.decode().strip() == "aiolwm2m broker: max_topics must be at least 1"
