"""A simulated fleet over NIDD, served through one group configuration, and a group delivery
to all of it (LPW-006): one MT delivery, a response from every member, each member's
gmdResults mapped back to it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.nidd.attachment import CLIENT_NIDD_TRANSMISSION, NIDD_SERVER_URI
from aiolwm2m.nidd.devices import NiddGroup
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.nidd.transport import NiddDeliveryFailed
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.simulator.nidd_fleet_link import NiddFleetLink

from .server_rig import nidd_rig
from .t8_schema import T8Schema, t8_schema

GROUP = "sim@nidd.example"
COUNT = 100


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


async def wait_registered(server: Any, count: int, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while len(server.registrations) < count:
            await asyncio.sleep(0.1)


async def test_a_fleet_registers_over_nidd_and_takes_a_group_delivery(schema: T8Schema
                                                                      ) -> None:
    nidd = NiddSettings(groups=(NiddGroup(GROUP),))
    async with nidd_rig(schema, settings=nidd) as rig:
        await rig.configured(GROUP)
        link = await NiddFleetLink.resolve(rig.scef.url, GROUP)
        fleet = Fleet(FleetConfig(COUNT, NIDD_SERVER_URI, rate=1000.0,
                                  profile=FleetProfile(send_interval=3600),
                                  transmission=CLIENT_NIDD_TRANSMISSION, nidd=link))
        await fleet.start()
        try:
            await wait_registered(rig.server, COUNT)
            reg = rig.server.registration("sim-000007")
            assert (reg.transport, reg.binding, reg.identity) == (
                "nidd", "N", "nidd:sim-000007@nidd.example")
            # One device as any other: a read through the group's configuration.
            assert (await rig.server.read("sim-000007", "/3/0/0", timeout=10)).code == (
                Code.CONTENT)
            # The whole group at once.
            endpoints = sorted(rig.server.registrations)
            # One member went to sleep: the SCEF cannot reach it, gmdResults says so.
            rig.scef.scef.set_behaviour(  # type: ignore[union-attr]
                "sim-000003@nidd.example", {"reachable": False})
            results = await rig.nidd.groups.send(GROUP, ReadRequest(LwM2MPath(3, 0, 0)),
                                                 endpoints, timeout=4.0)
            assert len(results) == COUNT
            failed = {ep for ep, r in results.items() if isinstance(r, Exception)}
            assert failed == {"sim-000003"}
            assert isinstance(results["sim-000003"], NiddDeliveryFailed)
            assert "FAILURE_TIMEOUT" in str(results["sim-000003"])
            assert all(r.code == Code.CONTENT for ep, r in results.items()  # type: ignore[union-attr]
                       if ep not in failed)
            async with asyncio.timeout(5):
                while "callback GmdNiddDownlinkDataDeliveryNotification" not in rig.checked:
                    await asyncio.sleep(0.05)
        finally:
            await fleet.stop(deregister=True, timeout=20)
        await asyncio.sleep(0.5)
        assert len(rig.server.registrations) < COUNT
