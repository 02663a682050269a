"""Campaigns over simulated devices: concurrency, per-minute rate, the failure rate that
stops a campaign, pause, resume and cancel, devices that never turn up, queue-mode devices
updated when they wake, and the events that tell about it all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.firmware.events import FirmwareCampaignChanged, FirmwareJobChanged
from aiolwm2m.firmware.records import CampaignLimits, FirmwareImage
from aiolwm2m.server.events import Event
from aiolwm2m.simulator.firmware import sim_image
from aiolwm2m.web.events_json import event_json

from .device import FirmwareDevice
from .sims import finished, sims, started, until
from .stack import FirmwareStack, firmware_stack

LIMITS = CampaignLimits(update_timeout=5, request_timeout=2, retry_delay=0.2, max_attempts=2,
                        device_wait=10)


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[FirmwareStack]:
    async with firmware_stack(tmp_path, host="127.0.0.1") as st:
        yield st


async def upload(s: FirmwareStack, size: int = 8000) -> FirmwareImage:
    async def body() -> AsyncIterator[bytes]:
        yield sim_image("2.0.0", size)

    image, _ = await s.firmware.upload(body(), name="sim", version="2.0.0")
    return image


def limits(**changes: Any) -> CampaignLimits:
    return CampaignLimits(**{**LIMITS.to_dict(), **changes})


async def test_every_device_updated_within_the_concurrency(s: FirmwareStack) -> None:
    image = await upload(s)
    active: set[str] = set()
    most = 0
    events: list[Event] = []

    def track(ev: Event) -> None:
        nonlocal most
        if isinstance(ev, FirmwareJobChanged | FirmwareCampaignChanged):
            events.append(ev)
        if isinstance(ev, FirmwareJobChanged):
            (active.add if ev.job.active else active.discard)(ev.job.id)
            most = max(most, len(active))

    s.server.events.subscribe(track)
    async with sims(s.server, 30) as fleet:
        run = await s.firmware.create_campaign("all", image.sha256,
                                               {"filter": {"endpoint": "sim-*"}},
                                               limits(concurrency=4))
        await finished(run)
        versions = {d.firmware_version for d in fleet.devices}
    assert run.campaign.state == "finished" and run.summary() == {"succeeded": 30}
    assert versions == {"2.0.0"}
    assert 2 <= most <= 4
    assert run.progress() == 1.0
    # Every step of every device was announced, and the campaign's counts as they moved.
    kinds = {type(ev) for ev in events}
    assert kinds == {FirmwareJobChanged, FirmwareCampaignChanged}
    last = [ev for ev in events if isinstance(ev, FirmwareCampaignChanged)][-1]
    assert last.counts == {"succeeded": 30} and last.campaign.state == "finished"
    job_event = event_json(s.server, next(ev for ev in events
                                          if isinstance(ev, FirmwareJobChanged)))
    assert job_event["type"] == "firmware-job" and "token" not in job_event
    assert job_event["endpoint"].startswith("sim-") and job_event["step"]["step"] == "started"


async def test_per_minute_limit(s: FirmwareStack) -> None:
    image = await upload(s)
    async with sims(s.server, 8) as _:
        run = await s.firmware.create_campaign("slow", image.sha256,
                                               {"filter": {"endpoint": "sim-*"}},
                                               limits(per_minute=5, concurrency=8))
        await until(lambda: run.counts["succeeded"] == 5, what="five updates")
        await asyncio.sleep(0.5)
        # The other three wait for the minute to pass.
        assert started(run) == 5 and run.counts["pending"] == 3
        await s.firmware.cancel(run.id)
        await finished(run)
    assert run.summary() == {"succeeded": 5, "cancelled": 3}


async def test_failure_rate_stops_the_campaign_and_resume_goes_on(s: FirmwareStack) -> None:
    image = await upload(s)
    async with sims(s.server, 30, update_failure_rate=0.5) as _:
        run = await s.firmware.create_campaign("risky", image.sha256,
                                               {"filter": {"endpoint": "sim-*"}},
                                               limits(concurrency=2, max_attempts=1,
                                                      max_failure_rate=0.3,
                                                      failure_rate_after=4))
        await until(lambda: run.campaign.state == "stopped", what="the stop")
        assert run.campaign.reason.startswith("failure rate ")
        assert run.campaign.reason.endswith(" above 0.3")
        await until(lambda: not run.tasks, what="running updates to end")
        before = started(run)
        await asyncio.sleep(0.5)
        assert started(run) == before and run.counts["pending"] > 0
        await s.firmware.resume(run.id)
        assert run.campaign.state == "running"
        await until(lambda: started(run) > before, what="a start after resume")
        await s.firmware.cancel(run.id)
        await finished(run)
    assert run.counts["failed"] >= 2 and run.counts["cancelled"] > 0
    failure = next(j for j in run.jobs.values() if j.state == "failed")
    assert failure.reason == "the device reports firmware update failed (Update Result 8)"


async def test_pause_and_resume(s: FirmwareStack) -> None:
    image = await upload(s)
    async with sims(s.server, 6, install_seconds=0.3) as _:
        run = await s.firmware.create_campaign("paced", image.sha256,
                                               {"filter": {"endpoint": "sim-*"}},
                                               limits(concurrency=1))
        await until(lambda: started(run) == 1, what="the first start")
        await s.firmware.pause(run.id)
        await until(lambda: not run.tasks, what="the running update to end")
        await asyncio.sleep(0.5)
        assert started(run) == 1 and run.campaign.state == "paused"
        assert run.summary() == {"succeeded": 1, "pending": 5}
        await s.firmware.resume(run.id)
        await finished(run)
    assert run.summary() == {"succeeded": 6}


async def test_cancel_resets_downloading_devices_and_lets_updating_ones_finish(
        s: FirmwareStack) -> None:
    image = await upload(s, 150_000)
    # The first device installs long enough for the second campaign to get its first
    # device downloading meanwhile, even on a loaded machine; 64-byte blocks keep that
    # download going for a while (a fast compiled core finished 1 KiB blocks between looks).
    async with sims(s.server, 4, install_seconds=3.5, block_szx=2) as _:
        run = await s.firmware.create_campaign("cut", image.sha256,
                                               {"endpoints": ["sim-000000"]},
                                               limits(update_timeout=15))
        await until(lambda: run.jobs[f"{run.id}-0"].state == "updating", what="updating")
        others = await s.firmware.create_campaign(
            "cut too", image.sha256, {"endpoints": ["sim-000001", "sim-000002"]},
            limits(concurrency=1))
        await until(lambda: run.jobs[f"{run.id}-0"].state == "updating"
                    and others.jobs[f"{others.id}-0"].state == "downloading", what="both")
        await s.firmware.cancel(run.id)
        await s.firmware.cancel(others.id)
        await finished(others)
        await finished(run)
        state = await s.server.read("sim-000001", "/5/0/3", timeout=5)
    # Already told to Update: not interrupted. Downloading: stopped, and its Object 5 reset.
    assert run.summary() == {"succeeded": 1}
    assert others.summary() == {"cancelled": 2}
    assert state.content.value == 0  # type: ignore[union-attr]
    assert [s.step for s in others.jobs[f"{others.id}-1"].steps] == ["cancelled"]


async def test_a_device_that_never_registers_fails_after_device_wait(s: FirmwareStack) -> None:
    image = await upload(s)
    async with sims(s.server, 1) as _:
        run = await s.firmware.create_campaign("ghosts", image.sha256,
                                               {"endpoints": ["sim-000000", "ghost"]},
                                               limits(device_wait=0.5))
        await finished(run)
    jobs = {j.endpoint: j for j in run.jobs.values()}
    assert jobs["sim-000000"].state == "succeeded"
    assert jobs["ghost"].state == "failed"
    assert jobs["ghost"].reason == "the device was not registered within 0.5 s"
    assert [st.step for st in jobs["ghost"].steps] == ["waiting", "failed"]


async def test_queue_mode_device_updated_when_it_wakes(tmp_path: Path) -> None:
    async with firmware_stack(tmp_path, awake_time=0.5) as s:
        image = await upload(s)
        dev = FirmwareDevice("dev-q", s.coap_uri, client_kwargs={
            "queue_mode": True, "awake_time": 0.5, "lifetime": 300},
            new_version="2.0.0")
        client = await dev.start()
        try:
            reg = s.server.registrations["dev-q"]
            await until(lambda: client.asleep and not s.server.queue.is_awake(reg),
                        what="the device asleep")
            run = await s.firmware.update_device("dev-q", image.sha256, limits())
            await until(lambda: run.jobs[f"{run.id}-0"].waiting_since is not None,
                        what="the job waiting")
            await asyncio.sleep(0.3)
            assert run.jobs[f"{run.id}-0"].state == "pending"
            await client.wake()
            await finished(run)
        finally:
            await dev.stop()
    (job,) = run.jobs.values()
    assert job.state == "succeeded", job.steps
    assert [st.step for st in job.steps][:2] == ["waiting", "started"]
    assert job.steps[0].detail == "the device is asleep"
    assert dev.installed
