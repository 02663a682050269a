"""The shipped commands over HTTP/2, on the test's event loop: ``aiolwm2m server
--http2-port`` (banner, REST API showing transport http2) and ``aiolwm2m client --server
http2://`` (``aiolwm2m simulate`` runs the fleet of test_simulator.py), and ``aiolwm2m
bootstrap-server --http2-port``."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import urllib.request
from pathlib import Path

from .raw_device import RawH2


async def start_server(tmp_path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "server", "--coap-host", "127.0.0.1",
        "--coap-port", "0", "--no-dtls", "--no-tcp", "--no-bootstrap", "--http-port", "0",
        "--http2-port", "0", "--store", "memory", "--api-token", "tok", cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines: list[str] = []
    while not any(line.startswith("  data") for line in lines):
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        assert line, "server exited: " + "".join(lines)
        lines.append(line)
    return "".join(lines)


def api(base: str, path: str) -> object:
    request = urllib.request.Request(base + path, headers={"Authorization": "Bearer tok"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def test_server_and_client_commands(tmp_path: Path,
                                                   event_loop_name: str) -> None:
    server = await start_server(tmp_path)
    processes: list[asyncio.subprocess.Process] = []
    try:
        text = await banner(server)
        found = re.search(r"http2:// tcp \S+:(\d+)", text)
        assert found is not None, text
        port = int(found.group(1))
        web = re.search(r"REST API (http://\S+)/api", text)
        assert web is not None
        base = web.group(1)
        processes.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "client", "--host", "127.0.0.1",
            "--endpoint", "cli-h2", "--server", f"http2://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT))
        loop = asyncio.get_running_loop()
        for _ in range(100):
            listing = await loop.run_in_executor(None, api, base, "/api/registrations")
            items = listing["items"]  # type: ignore[index]
            if any(i["endpoint"] == "cli-h2" for i in items):
                break
            await asyncio.sleep(0.1)
        (reg,) = [i for i in items if i["endpoint"] == "cli-h2"]
        assert (reg["transport"], reg["binding"]) == ("http2", "H")
        read = await loop.run_in_executor(None, api, base,
                                          "/api/clients/cli-h2/read?path=/3/0/0")
        assert read["code"] == "2.05" and read["content"] == "aiolwm2m"  # type: ignore[index]
        client = processes.pop()
        client.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(client.communicate(), 20)
        assert client.returncode == 0 and f"({event_loop_name})" in out.decode()
        assert "deregistered" in out.decode()
    finally:
        for proc in processes:
            proc.kill()
            await proc.wait()
        server.send_signal(signal.SIGTERM)
        assert server.stderr is not None
        rest = await asyncio.wait_for(server.stderr.read(), 20)
        assert await asyncio.wait_for(server.wait(), 20) == 0, rest.decode()[-2000:]


async def test_bootstrap_server_command_serves_http2(tmp_path: Path) -> None:
    """``aiolwm2m bootstrap-server --http2-port``: the listener is up (its banner names it)
    and a Bootstrap-Request over HTTP/2 is taken (204; the session then waits for the
    device's downlink stream)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "bootstrap-server", "--host", "127.0.0.1",
        "--port", "0", "--http2-port", "0", "--store", "memory",
        "--server", "http2://127.0.0.1:5690", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        found = re.search(r"http2 (\d+)", line)
        assert found is not None, line
        raw = await RawH2.open("127.0.0.1", int(found.group(1)))
        try:
            assert (await raw.exchange("POST", "/bs?ep=cli-bs", timeout=10)).status == 204
        finally:
            await raw.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
