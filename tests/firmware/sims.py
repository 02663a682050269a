"""Simulated devices for the campaign tests, and ways to wait on a campaign."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.firmware.campaigns import CampaignRun
from aiolwm2m.server import LwM2MServer
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.simulator.firmware import SimFirmwareProfile

SIM_FAST = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=2,
                                  response_timeout=5.0)


@contextlib.asynccontextmanager
async def sims(server: LwM2MServer, count: int, **firmware: Any) -> AsyncIterator[Fleet]:
    """``count`` simulated devices (sim-000000...) registered with ``server`` (listening on
    127.0.0.1), taking firmware as ``firmware`` says (SimFirmwareProfile fields)."""
    firmware.setdefault("install_seconds", 0.1)
    firmware.setdefault("reboot_seconds", 0.1)
    profile = FleetProfile(firmware=SimFirmwareProfile(**firmware), send_interval=3600)
    fleet = Fleet(FleetConfig(count, f"coap://127.0.0.1:{server.port}", rate=5000,
                              profile=profile, transmission=SIM_FAST))
    await fleet.start()
    try:
        async with asyncio.timeout(20):
            while len(server.registrations) < count:
                await asyncio.sleep(0.02)
        yield fleet
    finally:
        await fleet.stop(deregister=False)


async def until(condition: Callable[[], bool], timeout: float = 30.0,
                what: str = "the condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} did not come true within {timeout} s") from None


async def finished(run: CampaignRun, timeout: float = 60.0) -> None:
    await until(lambda: run.campaign.state in ("finished", "cancelled") and not run.tasks,
                timeout, f"campaign {run.campaign.name} ending (it is {run.campaign.state})")


def started(run: CampaignRun) -> int:
    """Jobs that have begun an attempt."""
    return sum(1 for j in run.jobs.values() if any(s.step == "started" for s in j.steps))
