"""The server's NIDD transport against the SCEF emulator, with a device written by hand:
configurations, registration bound to the External Identifier, requests NON with the
delivery status as acknowledgement, message identity from CoAP, TTL, and the callback's
refusals. Every T8 request, answer and notification is checked against the 3GPP schema."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd.devices import NiddDevice
from aiolwm2m.nidd.emulator import ScefEmulator, UeBehaviour
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.server.errors import RequestFailed

from .fixtures import bare_ue
from .server_rig import HandDevice, nidd_rig
from .t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


def settings(**kwargs: object) -> NiddSettings:
    return NiddSettings(devices=(NiddDevice(UE, "dev-1"),), **kwargs)  # type: ignore[arg-type]


async def test_a_device_registers_and_is_read_over_nidd(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        created = await device.register("dev-1")
        assert created.code == Code.CREATED and created.location_path[0] == "rd"
        reg = rig.server.registration("dev-1")
        assert reg.transport == "nidd" and reg.binding == "N"
        assert reg.identity == f"nidd:{UE}" and reg.address == (UE, 0)

        read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=10))
        request = await device.receive()
        assert request.code == Code.GET and request.mtype == MessageType.NON  # LPW-002
        await device.answer(request, Code.CONTENT, b"ACME", 0)
        response = await read
        assert response.code == Code.CONTENT and response.content.value == "ACME"  # type: ignore[union-attr]
        assert {"POST request", "POST 201", "POST 200", "callback NiddUplinkDataNotification"
                } <= set(rig.checked)


async def test_the_external_identifier_binds_the_registration(schema: T8Schema) -> None:
    other = "dev-2@nidd.example"
    nidd = NiddSettings(devices=(NiddDevice(UE, "dev-1"), NiddDevice(other)))
    async with nidd_rig(schema, settings=nidd) as rig, bare_ue(UE, rig.scef) as ue1, \
            bare_ue(other, rig.scef) as ue2:
        await rig.configured(UE)
        await rig.configured(other)
        await ue1.attach()
        await ue2.attach()
        device1, device2 = HandDevice(ue1), HandDevice(ue2)
        # dev-1 belongs to UE: another identifier cannot register it...
        refused = await device2.register("dev-1")
        assert refused.code == Code.FORBIDDEN and UE.encode() not in refused.payload
        # ... and UE may register dev-1 only.
        assert (await device1.register("dev-9")).code == Code.FORBIDDEN
        assert (await device1.register("dev-1")).code == Code.CREATED
        # A name first registered by an identifier stays bound to it.
        assert (await device2.register("free-name")).code == Code.CREATED
        assert rig.server.registration("free-name").identity == f"nidd:{other}"
        assert rig.server.refusals.by_reason["wrong-identity"] >= 2


async def test_a_sleeping_device_gets_buffered_requests_when_it_wakes(schema: T8Schema
                                                                      ) -> None:
    async with nidd_rig(schema, settings=settings()) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        await device.register("dev-1")
        ue.detach()
        await asyncio.sleep(0.05)
        read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=20))
        async with asyncio.timeout(10):
            while not rig.nidd.downlink.pending:
                await asyncio.sleep(0.02)  # the SCEF answered 201 BUFFERING
        assert not read.done()
        await ue.attach()
        request = await device.receive()
        await device.answer(request, Code.CONTENT, b"ACME", 0)
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        assert "callback NiddDownlinkDataDeliveryStatusNotification" in rig.checked


async def test_a_failed_delivery_fails_the_request_at_once(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        await HandDevice(ue).register("dev-1")
        rig.scef.scef.set_behaviour(UE, {"reachable": False})  # type: ignore[union-attr]
        # Its time to live is 2 s: the SCEF buffers (BUFFERING_TEMPORARILY_NOT_REACHABLE),
        # gives up (FAILURE_TIMEOUT), and the read fails with the SCEF's status.
        with pytest.raises(RequestFailed, match="FAILURE_TIMEOUT"):
            await rig.server.read("dev-1", "/3/0/0", timeout=2)


async def test_scef_down_keeps_downlinks_queued_until_their_ttl(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        await device.register("dev-1")
        port = rig.scef.port
        await rig.scef.stop()
        # The SCEF is gone: the request waits in the server's queue (backing off), and is
        # dropped, reported, when its time to live ends.
        with pytest.raises(RequestFailed, match="ttl-expired"):
            await rig.server.read("dev-1", "/3/0/0", timeout=1.5)
        assert rig.nidd.downlink.stats["backoffs"] >= 1
        assert rig.nidd.downlink.stats["dropped_ttl-expired"] == 1
        metrics = (await rig.api.get("/metrics")).text
        assert 'lwm2m_nidd_downlink_outcomes_total{outcome="dropped_ttl-expired"} 1.0' in (
            metrics)
        assert "lwm2m_nidd_scef_reachable 0.0" in metrics
        # While it is down, a request with time to spare is kept...
        read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=30))
        await asyncio.sleep(1.0)
        assert not read.done()
        # ... and delivered once the SCEF is back (with a new configuration: the old one
        # went with it, 404, and is made again).
        async with ScefEmulator("127.0.0.1", port, ue_port=port) as scef2:
            rig.nidd.downlink.wake_all()
            await ue.attach()
            request = await device.receive(timeout=20)
            await device.answer(request, Code.CONTENT, b"ACME", 0)
            assert (await read).content.value == "ACME"  # type: ignore[union-attr]
            assert len(scef2.scef.configurations) == 1  # type: ignore[union-attr]


async def test_duplicate_uplinks_are_answered_once_and_counted(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        msg = Message.request(Code.POST, ["rd"], query=["ep=dev-1", "lt=300", "b=N"],
                              payload=b"</3/0>", content_format=40, token=b"\x07")
        device.send(msg)
        first = await device.receive()
        # The same CoAP message again (a retransmission, or a replay by the network):
        # the cached reply, no second registration.
        from aiolwm2m.coap.codec import encode_udp
        from aiolwm2m.nidd import ue_link

        ue.send(ue_link.mo_data(UE, encode_udp(msg)))
        again = await device.receive()
        assert again.code == first.code and again.location_path == first.location_path
        assert rig.nidd.endpoint.stats["uplink_duplicates"] == 1
        assert len(rig.server.registrations) == 1


async def test_bad_callbacks_are_refused_and_counted(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=settings()) as rig:
        url = await rig.configured(UE)
        callback = rig.nidd.callback_url
        async with httpx.AsyncClient() as http:
            good = {"niddConfiguration": url, "externalId": UE,
                    "data": base64.b64encode(b"\x50\x00\x00\x01").decode()}
            wrong_secret = callback.rsplit("/", 1)[0] + "/guess"
            r = await http.post(wrong_secret, json=good)
            assert r.status_code == 401 and r.headers["content-type"] == (
                "application/problem+json")
            assert UE not in r.text
            r = await http.post(callback, json={**good, "niddConfiguration": url + "x"})
            assert r.status_code == 404
            r = await http.post(callback, json={**good, "data": "***"})
            assert r.status_code == 400 and r.json()["invalidParams"][0]["param"] == "/data"
            r = await http.post(callback, json={**good, "externalId": "x@nidd.example"})
            assert r.status_code == 403
            r = await http.post(callback, json={**good, "data": base64.b64encode(
                b"x" * 1600).decode()})
            assert r.status_code == 413
            r = await http.post(callback, content=b"{", headers={"content-type":
                                                                 "application/json"})
            assert r.status_code == 400
            r = await http.post(callback, content=b"x" * 70_000,
                                headers={"content-type": "application/json"})
            assert r.status_code == 413
            r = await http.post(callback, json=good)
            assert r.status_code == 204
        refusals = rig.server.refusals.by_reason
        for reason in ("nidd-callback-unauthenticated", "nidd-unknown-configuration",
                       "nidd-bad-data", "nidd-wrong-ue", "nidd-oversized",
                       "nidd-bad-callback"):
            assert refusals[reason] >= 1, reason


async def test_packets_larger_than_the_maximum_are_cut_into_blocks(schema: T8Schema
                                                                   ) -> None:
    behaviour = UeBehaviour(maximumPacketSize=8 * 300)
    async with nidd_rig(schema, settings=settings(), behaviour=behaviour) as rig, \
            bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        await device.register("dev-1")
        write = asyncio.ensure_future(rig.server.write("dev-1", "/3/0/14", "x" * 700,
                                                       timeout=10))
        blocks = []
        while True:
            request = await device.receive()
            block = request.block1
            assert block is not None and block.size <= 256
            blocks.append(request.payload)
            if not block.more:
                await device.answer(request, Code.CHANGED)
                break
            response = request.response(Code.CONTINUE)
            response.set_option(27, request.get_option(27))
            response.mtype = MessageType.NON
            device.send(response)
        await write
        assert len(b"".join(blocks)) >= 700
        assert m.is_success("SUCCESS")


async def test_confirmable_requests_are_not_resent_while_the_scef_holds_them(
        schema: T8Schema) -> None:
    from aiolwm2m.coap.params import TransmissionParameters

    timers = TransmissionParameters(ack_timeout=0.3, ack_random_factor=1.0, max_retransmit=4,
                                    response_timeout=30.0, empty_ack_delay=0.5)
    async with nidd_rig(schema, settings=settings(confirmable=True, transmission=timers)
                        ) as rig, bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        await device.register("dev-1")
        ue.detach()
        await asyncio.sleep(0.05)
        read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=20))
        # The SCEF buffers it (201); the CoAP retransmissions that follow stay here.
        async with asyncio.timeout(10):
            while rig.nidd.downlink.stats["retransmissions_held"] < 2:
                await asyncio.sleep(0.05)
        await ue.attach()
        request = await device.receive()
        assert request.mtype == MessageType.CON
        await device.answer(request, Code.CONTENT, b"ACME", 0)
        assert (await read).content.value == "ACME"  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        assert ue.frames.empty()  # one copy reached the device, no more


async def test_t8_refusals_are_counted_and_429_backs_off(schema: T8Schema) -> None:
    behaviour = UeBehaviour(downlinkRate=1, downlinkWindow=1.0)
    async with nidd_rig(schema, settings=settings(), behaviour=behaviour) as rig, \
            bare_ue(UE, rig.scef) as ue:
        await rig.configured(UE)
        await ue.attach()
        device = HandDevice(ue)
        await device.register("dev-1")  # its 2.01 was this window's one MT packet
        read = asyncio.ensure_future(rig.server.read("dev-1", "/3/0/0", timeout=20))
        request = await device.receive(timeout=15)  # after 429 and Retry-After
        await device.answer(request, Code.CONTENT, b"ACME", 0)
        assert (await read).code == Code.CONTENT
        assert rig.nidd.client.errors[(429, "TOO_MANY_REQUESTS")] >= 1
        assert rig.nidd.downlink.stats["backoffs"] >= 1
        metrics = (await rig.api.get("/metrics")).text
        assert 'lwm2m_nidd_t8_errors_total{cause="TOO_MANY_REQUESTS",status="429"}' in metrics


async def test_an_unauthorized_server_is_told_why(schema: T8Schema) -> None:
    async with ScefEmulator("127.0.0.1", 0, token="right") as scef, \
            nidd_rig(schema, scef=scef, settings=settings(token="wrong")) as rig:
        async with asyncio.timeout(10):
            while rig.nidd.configurations.entries[("externalId", UE)].state != "failed":
                await asyncio.sleep(0.02)
        entry = rig.nidd.configurations.entries[("externalId", UE)]
        assert "401" in entry.error and entry.url is None
        assert rig.nidd.client.errors[(401, "401")] == 2  # listing, then creating
        view = (await rig.api.get(f"/api/nidd/devices/{UE}")).json()
        assert view["configuration"]["state"] == "failed"


async def test_an_endpoint_of_a_nidd_device_cannot_register_over_ip(schema: T8Schema) -> None:
    from aiolwm2m.transport.udp import UdpEndpoint

    async with nidd_rig(schema, settings=settings()) as rig:
        udp = await UdpEndpoint.create("127.0.0.1", 0)
        try:
            register = Message.request(Code.POST, ["rd"], query=["ep=dev-1", "lt=300"],
                                       payload=b"</3/0>", content_format=40)
            reply = await udp.request(register, ("127.0.0.1", rig.server.port), timeout=10)
            assert reply.code == Code.FORBIDDEN
            assert rig.server.refusals.by_reason["nidd-endpoint"] == 1
            # Other names still register over UDP as before.
            other = Message.request(Code.POST, ["rd"], query=["ep=plain", "lt=300"],
                                    payload=b"</3/0>", content_format=40)
            assert (await udp.request(other, ("127.0.0.1", rig.server.port),
                                      timeout=10)).code == Code.CREATED
        finally:
            await udp.close()
