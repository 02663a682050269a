"""``aiolwm2m demo`` (what the README's run command starts): devices bootstrap and appear."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx

TOKEN = "demo-token"


async def start_demo(cwd: Path, devices: int, *extra: str, **popen: Any
                     ) -> tuple[asyncio.subprocess.Process, str]:
    """Start the demo on free ports; returns it and its base URL once its devices start."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "demo", "--devices", str(devices), "--coap-port",
        "0", "--coaps-port", "0", "--tcp-port", "0", "--tls-port", "0", "--bootstrap-port",
        "0", "--bootstrap-coaps-port", "0", "--http-port", "0", "--api-token", TOKEN, *extra,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **popen)
    assert proc.stderr is not None
    url = None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
        assert line, "demo exited"
        if "REST API" in line:
            url = line.split()[2].rsplit("/api", 1)[0]
        if "demo devices" in line:
            break
    assert url is not None
    return proc, url


def api(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})


async def wait_registered(client: httpx.AsyncClient, count: int) -> None:
    for _ in range(100):
        if (await client.get("/api/registrations")).json()["total"] == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the {count} demo devices did not all register")


async def test_demo_devices_bootstrap_register_and_answer(tmp_path: Path) -> None:
    proc, url = await start_demo(tmp_path, 3, "--store", "memory")
    try:
        async with api(url) as c:
            await wait_registered(c, 3)
            r = await c.get("/api/clients/demo-000002/read", params={"path": "/3303/0/5700"})
            assert r.json()["code"] == "2.05" and isinstance(r.json()["content"], float)
            configs = (await c.get("/api/bootstrap")).json()
            assert configs[0]["endpoint"] == "*"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_ctrl_c_to_the_process_group_stops_cleanly(tmp_path: Path) -> None:
    # A terminal's Ctrl-C reaches every process of the foreground group; the SQLite writer
    # must survive it until the server has committed its shutdown writes (the demo devices
    # deregister on the way out).
    proc, url = await start_demo(tmp_path, 2, "--data-dir", str(tmp_path / "d"),
                                 start_new_session=True)
    try:
        async with api(url) as c:
            await wait_registered(c, 2)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"WriterFailed" not in err, err.decode()
    with contextlib.closing(sqlite3.connect(tmp_path / "d" / "aiolwm2m.sqlite3")) as db:
        rows = db.execute("SELECT count(*) FROM registrations").fetchone()
    assert rows == (0,)  # the deregistrations at shutdown were committed
