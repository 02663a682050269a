"""``aiolwm2m bootstrap-server`` and ``aiolwm2m client`` as subprocesses, end to end."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Registered

from .conftest import next_event


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port: int = s.getsockname()[1]
    return port


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_bootstrap_server_and_client_commands() -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False))
    await server.start()
    events = server.events.stream()
    bs_port = free_port()
    python = sys.executable
    bs = await asyncio.create_subprocess_exec(
        python, "-m", "aiolwm2m", "bootstrap-server", "--host", "::1", "--port",
        str(bs_port), "--store", "memory", "--server", f"coap://[::1]:{server.port}",
        "--lifetime", "77", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    client = None
    try:
        line = await asyncio.wait_for(bs.stdout.readline(), 10)  # type: ignore[union-attr]
        assert b"bootstrap server on port" in line
        client = await asyncio.create_subprocess_exec(
            python, "-m", "aiolwm2m", "client", "--endpoint", "cli-dev", "--host", "::1",
            "--bootstrap", f"coap://[::1]:{bs_port}", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        registered = await next_event(events, Registered, 15)
        assert registered.registration.endpoint == "cli-dev"
        assert registered.registration.lifetime == 77
        assert (await server.read("cli-dev", "/3303/0/5700")).code == 0x45
        code, output = await stop(client)
        client = None
        assert code == 0 and "registered" in output and "bootstrapped" in output
    finally:
        if client is not None:
            client.kill()
            await client.wait()
        code, output = await stop(bs)
        await server.stop()
    assert code == 0 and "bootstrap-finished" in output


async def test_development_server_is_labelled() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "client", "--help",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    text = " ".join(out.decode().split())
    assert "DEVELOPMENT ONLY" in text and "normal path" in text
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "client", "--endpoint", "x",
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2 and b"--bootstrap" in err  # one of the two is required


async def test_client_content_format_flag() -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False))
    await server.start()
    events = server.events.stream()
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "client", "--endpoint", "cli-ct", "--host", "::1",
        "--server", f"coap://[::1]:{server.port}", "--content-format", "senml-cbor",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        registered = await next_event(events, Registered, 15)
        assert registered.registration.content_formats == (112,)
        assert (await stop(client))[0] == 0
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
        await server.stop()
