"""``aiolwm2m simulate`` as a user runs it: a subprocess against a running server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiolwm2m.server import LwM2MServer, ServerConfig


async def test_simulate_command(tmp_path: Path) -> None:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    summary = tmp_path / "summary.json"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "simulate", "--count", "50",
            "--server", f"coap://127.0.0.1:{srv.port}", "--rate", "500", "--duration", "1",
            "--progress", "lines", "--interval", "0.5", "--json-summary", str(summary),
            "--prefix", "cli-", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert "registered 50" in err.decode()  # the progress lines
        result = json.loads(summary.read_text())
        assert result["registered"] == 50 and result["devices"] == 50
        assert result["registered_per_second"] > 0
        assert result["rss_per_device_kb"] > 0
        assert result["deregistrations"] == 50
        assert not srv.registrations  # de-registered on exit
    finally:
        await srv.stop()


async def test_simulate_rejects_bad_arguments() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "simulate", "--count", "0", "--server",
        "coap://127.0.0.1:9", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"positive" in err
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "simulate", "--count", "1", "--server",
        "http://example.com", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"unsupported scheme" in err


async def test_simulate_content_format_flag(tmp_path: Path) -> None:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "simulate", "--count", "3", "--server",
            f"coap://127.0.0.1:{srv.port}", "--duration", "0.2", "--progress", "none",
            "--no-deregister", "--content-format", "senml-cbor",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert {r.content_formats for r in srv.registrations.values()} == {(112,)}
    finally:
        await srv.stop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "simulate", "--count", "1", "--server",
        "coap://127.0.0.1:9", "--content-format", "110,112", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"one preferred" in err, err.decode()
