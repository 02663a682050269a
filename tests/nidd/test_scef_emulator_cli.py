"""``aiolwm2m scef-emulator`` as a user runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys

import httpx


async def test_the_command_serves_t8_and_the_ue_socket() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "scef-emulator", "--port", "0", "--latency", "0.5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r"T8 (http://\S+)/3gpp-nidd/v1/.*UE link udp (\S+):(\d+)", line)
        assert found is not None, line
        async with httpx.AsyncClient(base_url=found.group(1)) as http:
            r = await http.get("/3gpp-nidd/v1/as-1/configurations")
            assert r.status_code == 200 and r.json() == []
            info = (await http.get("/emulator/v1/info")).json()
            assert info["ueLink"] == {"host": found.group(2), "port": int(found.group(3))}
            ue = (await http.get("/emulator/v1/ues/a@b")).json()
            assert ue["behaviour"]["latency"] == 0.5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "scef-emulator", "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().strip().endswith("the port is already in use"), err
