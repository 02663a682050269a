"""The simulator runs gateways: ``aiolwm2m simulate --gateways G --end-devices N`` (as
shipped, a subprocess) and :class:`GatewayFleet` in-process, against our server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer
from aiolwm2m.simulator.gateways import GatewayFleet, GatewayFleetConfig

from .conftest import eventually


async def test_gateway_fleet_end_devices_are_read(server: LwM2MServer) -> None:
    fleet = GatewayFleet(GatewayFleetConfig(3, f"coap://[::1]:{server.port}", end_devices=4,
                                            drift_interval=0, rate=1000))
    await fleet.start()
    try:
        await eventually(lambda: len(server.end_devices) == 12, 20)
        assert fleet.summary() == {"gateways": 3, "gateways_registered": 3, "end_devices": 12}
        assert {r.prefix for r in server.end_devices if r.gateway == "sim-gw-000002"} == {
            f"dev{i}" for i in range(4)}
        read = await server.read("sim-gw-000001", "/dev3/3303/0/5700")
        assert read.code == Code.CONTENT and isinstance(read.content.value, float)
    finally:
        await fleet.stop()
    await eventually(lambda: len(server.end_devices) == 0, 10)


def test_gateway_fleet_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="end devices per gateway"):
        GatewayFleetConfig(1, "coap://[::1]", end_devices=-1)
    with pytest.raises(ValueError, match="coap:// only"):
        GatewayFleetConfig(1, "http2://[::1]")


async def test_simulate_runs_gateways(server: LwM2MServer, tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiolwm2m", "simulate", "--count", "2", "--gateways", "2",
        "--end-devices", "5", "--server", f"coap://[::1]:{server.port}", "--duration", "2",
        "--register-timeout", "30", "--progress", "none", "--json-summary",
        str(summary_file), cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        # While it runs, the server has both gateways' end devices under them.
        await eventually(lambda: len(server.end_devices) == 10, 30)
        assert {r.gateway for r in server.end_devices} == {
            "sim-gw-000000", "sim-gw-000001"}
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    summary = json.loads(summary_file.read_text())
    assert (summary["registered"], summary["gateways_registered"], summary["end_devices"]) \
        == (2, 2, 10)
    await eventually(lambda: len(server.end_devices) == 0, 10)  # they deregistered


async def test_simulate_gateways_only_and_bad_counts(server: LwM2MServer,
                                                     tmp_path: Path) -> None:
    async def simulate(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "simulate", "--server",
            f"coap://[::1]:{server.port}", "--progress", "none", *args, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, err.decode()

    code, err = await simulate("--count", "0", "--gateways", "1", "--end-devices", "3",
                               "--duration", "0.5", "--register-timeout", "30")
    assert code == 0, err
    code, err = await simulate("--count", "0", "--duration", "0.5")
    assert code == 2 and "--count and --rate must be positive" in err
    code, err = await simulate("--count", "0", "--gateways", "1", "--end-devices", "-3")
    assert code == 2 and err.strip() == (
        "aiolwm2m simulate: --gateways: end devices per gateway: 0 to 100000")
