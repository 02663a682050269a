"""The server's NIDD configurations over their life: refreshed before their duration ends,
taken over after a restart (moved to the new callback URL), made again when the SCEF ends
one, deleted and made again when the device's registration ends."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd.devices import NiddDevice
from aiolwm2m.nidd.emulator import ScefEmulator
from aiolwm2m.nidd.settings import NiddSettings

from .fixtures import bare_ue
from .server_rig import HandDevice, nidd_rig
from .t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


async def test_a_configuration_is_refreshed_before_it_ends(schema: T8Schema) -> None:
    settings = NiddSettings(devices=(NiddDevice(UE),), configuration_duration=4.0,
                            refresh_margin=2.0)
    async with nidd_rig(schema, settings=settings) as rig:
        url = await rig.configured(UE)
        await asyncio.sleep(6.0)
        # Past its first duration, still there, same URI: PATCHed in time.
        assert rig.nidd.configurations.entries[("externalId", UE)].url == url
        assert "PATCH 200" in rig.checked
        scef = rig.scef.scef
        assert scef is not None and [r.config.self for r in scef.configurations.values()] == [
            url]


async def test_a_restarted_server_takes_its_configurations_over(schema: T8Schema) -> None:
    settings = NiddSettings(devices=(NiddDevice(UE),))
    async with ScefEmulator("127.0.0.1", 0) as scef:
        async with nidd_rig(schema, scef=scef, settings=settings) as first:
            url = await first.configured(UE)
            old_callback = first.nidd.callback_url
        # The first server stopped without deleting it; the second adopts it.
        async with nidd_rig(schema, scef=scef, settings=settings) as second:
            assert await second.configured(UE) == url
            async with asyncio.timeout(10):
                while "PATCH 200" not in second.checked:
                    await asyncio.sleep(0.02)
            assert scef.scef is not None
            (record,) = scef.scef.configurations.values()
            assert record.config.notificationDestination == second.nidd.callback_url
            assert record.config.notificationDestination != old_callback


async def test_a_terminated_configuration_is_made_again(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=NiddSettings(devices=(NiddDevice(UE),))) as rig:
        url = await rig.configured(UE)
        scef = rig.scef.scef
        assert scef is not None
        record = next(iter(scef.configurations.values()))
        record.expires_at = 0.0
        scef._expire(record)  # the SCEF ends it (duration): TERMINATED
        async with asyncio.timeout(10):
            while True:
                entry = rig.nidd.configurations.entries[("externalId", UE)]
                if entry.url is not None and entry.url != url:
                    break
                await asyncio.sleep(0.02)
        assert "callback NiddConfigurationStatusNotification" in rig.checked
        assert len(scef.configurations) == 1


async def test_a_registration_ending_resets_the_configuration(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=NiddSettings(devices=(NiddDevice(UE, "dev-1"),))
                        ) as rig, bare_ue(UE, rig.scef) as ue:
        url = await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        created = await device.register("dev-1")
        from aiolwm2m.coap.codes import Code
        from aiolwm2m.coap.message import Message

        device.send(Message.request(Code.DELETE, list(created.location_path), token=b"\x09"))
        assert (await device.receive()).code == Code.DELETED
        # Deleted with the registration, made anew for the next one.
        async with asyncio.timeout(10):
            while True:
                entry = rig.nidd.configurations.entries[("externalId", UE)]
                if entry.url is not None and entry.url != url:
                    break
                await asyncio.sleep(0.02)
        assert "DELETE 204" in rig.checked
        scef = rig.scef.scef
        assert scef is not None and len(scef.configurations) == 1
        assert next(iter(scef.configurations.values())).config.status == m.ACTIVE
