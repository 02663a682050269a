"""One device's update end to end with our client library over UDP, DTLS, TCP and TLS: pulled
over each CoAP scheme and HTTP from the server itself, or pushed; the device's failures
(Update Result, never back, back with the old version) retried with back-off and recorded;
and an update interrupted by a restart of the service carried on where it was."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.firmware.campaigns import CampaignRun
from aiolwm2m.firmware.records import CampaignLimits, FirmwareImage
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import SecurityInfo

from .device import FirmwareDevice
from .stack import FirmwareStack, firmware_stack

IMAGE = os.urandom(60_000)
KEY = bytes(range(16))


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[FirmwareStack]:
    async with firmware_stack(tmp_path, coaps_port=0, tcp_port=0, tls_port=0) as st:
        yield st


async def uploaded(s: FirmwareStack) -> FirmwareImage:
    image, _ = await s.firmware.upload(one_chunk(IMAGE), name="app", version="2.0.0")
    return image


async def finished(run: CampaignRun, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while run.campaign.state not in ("finished", "cancelled", "stopped"):
            await asyncio.sleep(0.05)


def steps(run: CampaignRun) -> list[str]:
    (job,) = run.jobs.values()
    return [st.step for st in job.steps]


SCHEMES = {"udp": "coap", "dtls": "coaps", "tcp": "coap+tcp", "tls": "coaps+tcp"}


async def psk_device(s: FirmwareStack, endpoint: str, transport: str, **kw: Any
                     ) -> FirmwareDevice:
    scheme = SCHEMES[transport]
    uri = f"{scheme}://[::1]:{s.server.port_of(transport)}"
    client_kwargs: dict[str, Any] = {}
    if transport in ("dtls", "tls"):
        identity = f"{endpoint}-id".encode()
        await s.server.stores.security.put(SecurityInfo(endpoint, psk_identity=identity,
                                                        psk_key=KEY))
        client_kwargs["development_security"] = PskCredentials(identity, KEY)
    return FirmwareDevice(endpoint, uri, client_kwargs=client_kwargs, **kw)


@pytest.mark.parametrize("transport", ["udp", "dtls", "tcp", "tls"])
async def test_pull_over_the_scheme_the_device_registered_with(s: FirmwareStack,
                                                               transport: str) -> None:
    image = await uploaded(s)
    dev = await psk_device(s, "dev-1", transport, behaviour=["reboot"])
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-1", image.sha256, CampaignLimits(
            update_timeout=10, download_timeout=20))
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "succeeded", job.steps
    assert job.method == SCHEMES[transport] and job.from_version == "1.0.0"
    assert dev.installed == [IMAGE] and dev.version == "2.0.0"
    # Update Result 1 came first (the old version was still running), then the device
    # registered again with the new one.
    assert steps(run) == ["started", "downloading", "downloaded", "updating", "verifying",
                          "re-registered", "succeeded"]
    uri = next(st.detail for st in job.steps if st.step == "downloading")
    assert uri.startswith(f"Package URI {SCHEMES[transport]}://[::1]:")
    assert run.campaign.state == "finished" and run.summary() == {"succeeded": 1}
    assert len(s.firmware.deliveries) == 0  # the download URI is gone with the job


@pytest.mark.parametrize("method", ["push", "http", "coap+tcp"])
async def test_other_methods(s: FirmwareStack, method: str) -> None:
    image = await uploaded(s)
    dev = await psk_device(s, "dev-1", "udp")
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-1", image.sha256, CampaignLimits(
            method=method, update_timeout=10, download_timeout=20))
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "succeeded", job.steps
    assert job.method == method and dev.installed == [IMAGE]
    assert ("pushing" if method == "push" else "downloading") in steps(run)


async def test_method_from_what_the_device_supports(s: FirmwareStack) -> None:
    image = await uploaded(s)
    # Pulls over HTTP only: the server offers it on its HTTP port.
    http_only = await psk_device(s, "dev-http", "udp", firmware_kwargs={"protocols": ["http"]})
    # Push only (/5/0/9 = 1).
    push_only = await psk_device(s, "dev-push", "udp", firmware_kwargs={"delivery_method": 1})
    # Registered over DTLS, pulls over coap only: no NoSec download for it, so push.
    secure = await psk_device(s, "dev-sec", "dtls", firmware_kwargs={"protocols": ["coap"]})
    # Pulls over coaps only and takes no push: nothing in common with a NoSec device.
    stuck = await psk_device(s, "dev-none", "udp", firmware_kwargs={
        "protocols": ["coaps"], "delivery_method": 0})
    devices = [http_only, push_only, secure, stuck]
    for dev in devices:
        await dev.start()
    try:
        run = await s.firmware.create_campaign("mixed", image.sha256, {"filter": {
            "endpoint": "dev-*"}}, CampaignLimits(update_timeout=10, download_timeout=20))
        await finished(run)
    finally:
        for dev in devices:
            await dev.stop()
    jobs = {j.endpoint: j for j in run.jobs.values()}
    assert {ep: (j.state, j.method) for ep, j in jobs.items()} == {
        "dev-http": ("succeeded", "http"), "dev-push": ("succeeded", "push"),
        "dev-sec": ("succeeded", "push"), "dev-none": ("failed", None)}
    assert jobs["dev-none"].reason.startswith("no delivery method in common")
    assert jobs["dev-none"].attempt == 1  # permanent: not retried


FAST_RETRY = CampaignLimits(update_timeout=2, download_timeout=10, retry_delay=0.2,
                            max_attempts=2, request_timeout=1)


@pytest.mark.parametrize(("behaviour", "reason"), [
    (["fail"], "the device reports firmware update failed (Update Result 8)"),
    (["old"], "the device came back with version 1.0.0, not 2.0.0"),
    (["silent"], "the device did not come back with version 2.0.0 within 1 s (it reported "
                 "success, Update Result 1, before it went)"),
])
async def test_device_failures_are_retried_then_recorded(s: FirmwareStack,
                                                         behaviour: list[str],
                                                         reason: str) -> None:
    image = await uploaded(s)
    dev = await psk_device(s, "dev-1", "udp", behaviour=behaviour)
    await dev.start()
    try:
        limits = FAST_RETRY
        if behaviour == ["silent"]:
            # Waiting for a device that is gone is all this case does: keep it short.
            limits = dataclasses.replace(limits, update_timeout=1, request_timeout=0.5)
        run = await s.firmware.update_device("dev-1", image.sha256, limits)
        if behaviour == ["silent"]:
            # It went away after the first Update; it is back for the second attempt.
            async with asyncio.timeout(10):
                while run.jobs[f"{run.id}-0"].state != "retrying":
                    await asyncio.sleep(0.02)
            await dev.start()
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "failed" and job.reason == reason, job.steps
    assert job.attempt == 2
    failed = [st for st in job.steps if st.step in ("attempt failed", "failed")]
    assert [st.step for st in failed] == ["attempt failed", "failed"]
    assert failed[0].detail == f"{reason}; next attempt in 0.2 s"


async def test_failed_attempt_then_success(s: FirmwareStack) -> None:
    image = await uploaded(s)
    dev = await psk_device(s, "dev-1", "udp", behaviour=["fail", "ok"])
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-1", image.sha256, FAST_RETRY)
        await finished(run)
    finally:
        await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "succeeded" and job.attempt == 2, job.steps
    # The second attempt found the package still downloaded after the failed Update and
    # reset Object 5 before delivering again.
    assert "reset" in [st.step for st in job.steps]


async def test_already_at_the_version(s: FirmwareStack) -> None:
    image = await uploaded(s)
    dev = await psk_device(s, "dev-1", "udp", version="2.0.0")
    await dev.start()
    try:
        run = await s.firmware.update_device("dev-1", image.sha256)
        await finished(run)
    finally:
        await dev.stop()
    assert steps(run) == ["started", "succeeded"]
    assert dev.installed == []


async def test_server_restart_resumes_a_download(tmp_path: Path) -> None:
    """The server (and its firmware service) stops while the device downloads and starts
    again on the same port and data: the device's download resumes from the same URI where
    it stopped (no block fetched twice but those lost), and the update completes."""
    config = ServerConfig(host="::1", port=0, data_dir=tmp_path)
    server = LwM2MServer(config)
    await server.start()
    firmware = FirmwareService(server)
    await firmware.start()
    image, _ = await firmware.upload(one_chunk(IMAGE), name="app", version="2.0.0")
    dev = FirmwareDevice("dev-1", f"coap://[::1]:{server.port}", behaviour=["reboot"],
                         client_kwargs={"request_timeout": 0.5})
    await dev.start()
    try:
        run = await firmware.update_device("dev-1", image.sha256, CampaignLimits(
            update_timeout=10, download_timeout=30))
        job_id = f"{run.id}-0"
        async with asyncio.timeout(10):
            while run.jobs[job_id].progress < 0.2:
                await asyncio.sleep(0.002)
        port = server.port
        await firmware.stop()
        await server.stop()
        assert run.jobs[job_id].state == "downloading"
        server = LwM2MServer(dataclasses.replace(config, port=port))
        firmware = FirmwareService(server)  # before the listeners open: no 4.04 between
        await server.start()
        await firmware.start()
        try:
            resumed = firmware.run(run.id)
            await finished(resumed)
        finally:
            await firmware.stop()
            await server.stop()
    finally:
        await dev.stop()
    job = resumed.jobs[job_id]
    assert job.state == "succeeded", job.steps
    assert [st.step for st in job.steps][:3] == ["started", "downloading", "resumed"]
    assert dev.installed == [IMAGE] and job.attempt == 1
    assert job.token == run.jobs[job_id].token  # the same URI throughout
