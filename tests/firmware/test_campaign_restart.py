"""A campaign over 200 simulated devices with injected failures, through ``aiolwm2m server``
(a real process, driven over its REST API), killed (SIGKILL) midway and started again on
the same data: the campaign carries on where it was and ends with every device either
updated or failed with its reason; none stuck, none lost."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiolwm2m.client.backoff import RetryPolicy
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.simulator.firmware import SimFirmwareProfile, sim_image

from .sims import SIM_FAST

COUNT = 200
TOKEN = "restart-token"
FAILURES = SimFirmwareProfile(install_seconds=0.2, reboot_seconds=0.1,
                              download_failure_rate=0.03, update_failure_rate=0.03,
                              vanish_rate=0.02, old_version_rate=0.02, transient_rate=0.05)
#: Devices no attempt can update, by what they do.
PERMANENT = {what: {i for i in range(COUNT) if FAILURES.picked(i, what)}
             for what in ("download", "update", "vanish", "old")}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data: Path, coap_port: int, http_port: int) -> None:
        self.args = ["--coap-host", "127.0.0.1", "--coap-port", str(coap_port), "--no-dtls",
                     "--no-tcp", "--no-bootstrap", "--http-port", str(http_port),
                     "--api-token", TOKEN, "--data-dir", str(data), "--log-level", "WARNING"]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiolwm2m", "server", *self.args,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        seen = []
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stderr.readline()).decode()
                assert line, "server exited: " + "".join(seen)
                seen.append(line)
                if re.search(r"\bdata\b", line):
                    break
        # Keep reading what it logs, so that a full pipe never blocks it.
        self._drain = asyncio.ensure_future(self.proc.stderr.read())

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._drain

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 30)
            await self._drain


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, int, str]]:
    coap_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    proc = ServerProcess(tmp_path / "data", coap_port, http_port)
    await proc.start()
    try:
        yield proc, coap_port, f"http://127.0.0.1:{http_port}"
    finally:
        await proc.stop()


async def campaign(http: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get(f"/api/firmware/campaigns/{cid}")).json()
    return body


async def test_campaign_over_200_devices_killed_and_restarted(
        server: tuple[ServerProcess, int, str]) -> None:
    proc, coap_port, url = server
    profile = FleetProfile(firmware=FAILURES, send_interval=3600, lifetime=600,
                           retry=RetryPolicy(initial=0.5, maximum=2.0, jitter=0.5,
                                             attempts_before_fallback=0))
    fleet = Fleet(FleetConfig(COUNT, f"coap://127.0.0.1:{coap_port}", rate=2000,
                              profile=profile, transmission=SIM_FAST))
    await fleet.start()
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        try:
            async with asyncio.timeout(30):
                while (await http.get("/api/registrations", params={"limit": 1})
                       ).json()["total"] < COUNT:
                    await asyncio.sleep(0.1)
            r = await http.post("/api/firmware/images", params={
                "name": "sim", "version": "2.0.0"}, content=sim_image("2.0.0", 6000))
            sha = r.json()["sha256"]
            r = await http.post("/api/firmware/campaigns", json={
                "name": "two hundred", "image": sha,
                "targets": {"filter": {"endpoint": "sim-*"}},
                "limits": {"concurrency": 25, "update_timeout": 3, "request_timeout": 1.5,
                           "retry_delay": 0.5, "max_attempts": 3, "device_wait": 60,
                           "download_timeout": 30}})
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            async with asyncio.timeout(60):
                while (await campaign(http, cid))["counts"].get("succeeded", 0) < 40:
                    await asyncio.sleep(0.05)
            await proc.kill()
            await asyncio.sleep(0.5)
            await proc.start()
            restarted = asyncio.get_running_loop().time()
            async with asyncio.timeout(120):
                while (body := await campaign(http, cid))["state"] != "finished":
                    await asyncio.sleep(0.2)
            print(f"finished {asyncio.get_running_loop().time() - restarted:.1f} s after the "
                  f"restart: {body['counts']}")
            jobs = (await http.get(f"/api/firmware/campaigns/{cid}/jobs",
                                   params={"limit": 1000, "steps": "true"})).json()["items"]
        finally:
            await fleet.stop(deregister=False)
    assert len(jobs) == COUNT
    by_index = {int(j["endpoint"][4:]): j for j in jobs}
    assert {j["state"] for j in jobs} <= {"succeeded", "failed"}  # none stuck
    assert sum(body["counts"].values()) == COUNT
    failed = {i for i, j in by_index.items() if j["state"] == "failed"}
    # Every device that cannot be updated failed, each with its reason...
    assert set().union(*PERMANENT.values()) <= failed
    for i in PERMANENT["download"]:
        assert "integrity check failure" in by_index[i]["reason"]
    for i in PERMANENT["update"] - PERMANENT["download"]:
        assert "firmware update failed" in by_index[i]["reason"]
    for i in PERMANENT["old"] - PERMANENT["download"] - PERMANENT["update"] - PERMANENT["vanish"]:
        assert "came back with version 1.0.0" in by_index[i]["reason"]
    assert all(by_index[i]["reason"] for i in failed)
    # ... and the others were updated (a device the restart caught badly may use up its
    # attempts, but not many), and say so themselves.
    assert len(failed - set().union(*PERMANENT.values())) <= 5
    for i, job in by_index.items():
        if job["state"] == "succeeded":
            assert fleet.devices[i].firmware_version == "2.0.0", job
    # The restart was noticed: jobs that were active carried on from where they were.
    assert any(s["step"] == "resumed" for j in jobs for s in j["steps"])
