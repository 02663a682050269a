"""The three commands of the README: the SCEF emulator, the server with --scef and a device
with --nidd, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

UE = "dev-1@nidd.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def line_matching(stream: asyncio.StreamReader | None, pattern: str) -> re.Match[str]:
    assert stream is not None
    seen = []
    async with asyncio.timeout(30):
        while True:
            line = (await stream.readline()).decode()
            assert line, "exited: " + "".join(seen)
            seen.append(line)
            found = re.search(pattern, line)
            if found is not None:
                return found


async def stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 20)


async def test_emulator_server_and_device_in_three_commands(tmp_path: Path) -> None:
    scef_port, http_port = free_port(), free_port()
    procs = []
    try:
        scef = await run("scef-emulator", "--port", str(scef_port), cwd=tmp_path)
        procs.append(scef)
        await line_matching(scef.stdout, "UE link udp")
        server = await run("server", "--scef", f"http://127.0.0.1:{scef_port}",
                           "--nidd-device", f"{UE}=dev-1", "--http-port", str(http_port),
                           "--api-token", "tok", "--coap-port", "0", "--coaps-port", "0",
                           "--no-tcp", "--no-bootstrap", "--no-rd", "--store", "memory",
                           cwd=tmp_path)
        procs.append(server)
        await line_matching(server.stderr, r"nidd +SCEF http://127\.0\.0\.1")
        device = await run("client", "--nidd", f"http://127.0.0.1:{scef_port}",
                           "--external-id", UE, "--endpoint", "dev-1", cwd=tmp_path)
        procs.append(device)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     headers={"Authorization": "Bearer tok"}) as api:
            async with asyncio.timeout(30):
                while True:
                    regs = (await api.get("/api/registrations")).json()["items"]
                    if regs:
                        break
                    await asyncio.sleep(0.2)
            assert regs[0]["endpoint"] == "dev-1" and regs[0]["address"] == f"{UE}:0"
            r = await api.get("/api/clients/dev-1/read", params={"path": "/3/0/0"})
            assert r.status_code == 200, r.text
            status = (await api.get("/api/nidd")).json()
            assert status["active_configurations"] == 1 and status["reachable"] is True
        assert await stop(device) == 0
    finally:
        for proc in reversed(procs):
            await stop(proc)


async def test_bad_nidd_flags_are_one_line(tmp_path: Path) -> None:
    proc = await run("client", "--nidd", "http://127.0.0.1:9", "--endpoint", "x",
                     cwd=tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and "--external-id" in err.decode()
    proc = await run("server", "--scef", "http://127.0.0.1:9", "--nidd-device", "no-at-sign",
                     "--http-port", "0", cwd=tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines()[-1].startswith("aiolwm2m server:")


async def test_simulate_runs_a_fleet_over_nidd(tmp_path: Path) -> None:
    from aiolwm2m.nidd.devices import NiddGroup
    from aiolwm2m.nidd.settings import NiddSettings

    from .server_rig import nidd_rig
    from .t8_schema import t8_schema

    group = "sim@nidd.example"
    async with nidd_rig(t8_schema(), settings=NiddSettings(groups=(NiddGroup(group),))
                        ) as rig:
        await rig.configured(group)
        proc = await run("simulate", "--nidd", rig.scef.url, "--nidd-group", group,
                         "--count", "20", "--rate", "200", "--duration", "1",
                         "--progress", "none", cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-2000:]
        summary = json.loads(out)
        assert summary["registered"] == 20
        assert summary["deregistrations"] == 20
