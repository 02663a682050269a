"""End to end over NIDD: our client library on the SCEF emulator's UE socket, our server
on its T8 API. The device registers (binding N, bound to its External Identifier), is read,
written and observed, sends data, sleeps (the SCEF buffers), misses a time to live and hits
its quota. Every T8 request, answer and notification is checked against the 3GPP schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.nidd.attachment import NIDD_SERVER_URI, NiddAttachment
from aiolwm2m.nidd.devices import NiddDevice
from aiolwm2m.nidd.quotas import QuotaSpec
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.server.errors import RequestFailed
from aiolwm2m.server.events import NotificationReceived, SendReceived

from .server_rig import Rig, nidd_rig
from .t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"
#: Quick timers: nothing is lost on loopback except what a test drops on purpose.
FAST = TransmissionParameters(ack_timeout=1.0, ack_random_factor=1.0, max_retransmit=1,
                              response_timeout=30.0, empty_ack_delay=0.5)


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


@asynccontextmanager
async def nidd_client(rig: Rig, endpoint: str = "dev-1", ident: str = UE, **kwargs: Any
                      ) -> AsyncIterator[LwM2MClient]:
    config = ClientConfig.development(
        endpoint, NIDD_SERVER_URI, binding="N", transmission=FAST, lifetime=300,
        nidd=NiddAttachment(rig.scef.url, ident), **kwargs)
    client = LwM2MClient(config, objects=[TemperatureInstance(0)])
    await client.start()
    try:
        await client.wait_registered(timeout=15)
        yield client
    finally:
        await client.stop()


def settings(**kwargs: Any) -> NiddSettings:
    return NiddSettings(devices=(NiddDevice(UE, "dev-1"),), **kwargs)


async def test_register_read_write_observe_send(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig:
        await rig.configured(UE)
        async with nidd_client(rig) as client:
            reg = rig.server.registration("dev-1")
            assert (reg.transport, reg.binding, reg.identity) == ("nidd", "N", f"nidd:{UE}")
            assert any(o.object_id == 11 for o in reg.objects)  # Object 11, PDN Type Non-IP
            read = await rig.server.read("dev-1", "/3/0/0", timeout=10)
            assert read.code == Code.CONTENT
            assert (await rig.server.read("dev-1", "/11/0/24", timeout=10)).content.value == 0  # type: ignore[union-attr]
            write = await rig.server.write("dev-1", "/3/0/14", "+02:00", timeout=10)
            assert write.code == Code.CHANGED and client.instance(3).get(14) == "+02:00"
            events = rig.server.events.stream()
            await rig.server.observe("dev-1", "/3303/0/5700", timeout=10)
            client.instance(3303).set(5700, 31.5)
            note = await events.until(NotificationReceived, timeout=10)
            assert note.response.content.value == 31.5  # type: ignore[union-attr]
            await client.send(["/3303/0/5700"])
            sent = await events.until(SendReceived, timeout=10)
            assert sent.registration.endpoint == "dev-1"
        assert "dev-1" not in rig.server.registrations  # de-registered over NIDD
        assert {"POST request", "POST 201", "callback NiddUplinkDataNotification"} <= set(
            rig.checked)


async def test_a_sleeping_device_is_buffered_for_then_misses_a_ttl(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig:
        await rig.configured(UE)
        async with nidd_client(rig) as client:
            # Power saving: the device detaches; the SCEF buffers (201 BUFFERING)...
            client.set_radio(asleep=True)
            await asyncio.sleep(0.1)
            read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=20))
            async with asyncio.timeout(10):
                while not rig.nidd.downlink.pending:
                    await asyncio.sleep(0.02)
            # ... and delivers when it attaches again.
            client.set_radio(asleep=False)
            assert (await read).code == Code.CONTENT
            # Asleep for longer than the request's time to live: the read fails with the
            # SCEF's verdict, FAILURE_TIMEOUT.
            client.set_radio(asleep=True)
            await asyncio.sleep(0.1)
            with pytest.raises(RequestFailed, match=r"FAILURE_TIMEOUT|ttl-expired"):
                await rig.server.read("dev-1", "/3/0/0", timeout=2)
            client.set_radio(asleep=False)


async def test_queue_mode_on_top_of_nidd(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings(), awake_time=1.0) as rig:
        await rig.configured(UE)
        async with nidd_client(rig, queue_mode=True, awake_time=1.0) as client:
            reg = rig.server.registration("dev-1")
            assert reg.queue_mode
            await asyncio.sleep(1.5)
            await rig.server.tick()
            assert client.asleep
            # The server queues for the sleeping device; its wake-up Update flushes it.
            read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0"))
            await asyncio.sleep(0.2)
            assert not read.done()
            await client.wake()
            assert (await asyncio.wait_for(read, 15)).code == Code.CONTENT


async def test_quotas_hold_downlink_and_drop_uplink(schema: T8Schema) -> None:
    quota = QuotaSpec(downlink_packets=4, uplink_packets=4, window=7200)  # not an Object 11 unit
    nidd = NiddSettings(devices=(NiddDevice(UE, "dev-1", quota=quota),))
    async with nidd_rig(schema, settings=nidd) as rig:
        await rig.configured(UE)
        async with nidd_client(rig):
            # Register used an uplink packet and its 2.01 a downlink one: three downlink
            # packets are left, then requests wait beyond their time to live and fail.
            for _ in range(3):
                assert (await rig.server.read("dev-1", "/3/0/0", timeout=5)).code == (
                    Code.CONTENT)
            with pytest.raises(RequestFailed, match="quota-packets"):
                await rig.server.read("dev-1", "/3/0/0", timeout=2)
            # Register and the three reads' answers spent the uplink quota.
            assert rig.server.refusals.by_reason["nidd-quota-uplink-packets"] == 0
            view = (await rig.api.get(f"/api/nidd/devices/{UE}")).json()
            assert view["quota_remaining"]["uplink_packets"] == 0
            assert view["quota_remaining"]["downlink_packets"] == 0
        # De-register is an uplink packet over the quota: dropped, counted.
        assert rig.server.refusals.by_reason["nidd-quota-uplink-packets"] >= 1
        metrics = (await rig.api.get("/metrics")).text
        assert 'lwm2m_nidd_quota_refusals_total{direction="uplink",kind="packets"}' in metrics


async def test_the_uplink_quota_is_reported_in_object_11(schema: T8Schema) -> None:
    quota = QuotaSpec(uplink_packets=50, window=3600)
    nidd = NiddSettings(devices=(NiddDevice(UE, "dev-1", quota=quota),))
    async with nidd_rig(schema, settings=nidd) as rig:
        await rig.configured(UE)
        async with nidd_client(rig) as client:
            profile = client.instance(11)
            async with asyncio.timeout(10):
                while profile.get(26) is None:
                    await asyncio.sleep(0.05)
            # 50 packets an hour (Uplink Time Unit 2), which the client now keeps to.
            assert (profile.get(26), profile.get(27)) == (50, 2)
            assert profile.uplink_limit() == (50, 3600.0)  # type: ignore[attr-defined]
