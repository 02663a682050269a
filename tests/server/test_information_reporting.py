"""Observe, Observe-Composite, cancellation and Send, with an aiocoap device."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ResourceType, SingleResource
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import NotificationReceived, ObservationEnded, SendReceived

from .aiocoap_device import AiocoapDevice, wait_for
from .conftest import uri

CF = ContentFormat


@pytest.fixture
async def registered(server: LwM2MServer, device: AiocoapDevice
                     ) -> AsyncIterator[AiocoapDevice]:
    assert (await device.register(uri(server))).code == C.CREATED
    yield device


async def next_notification(stream: object) -> NotificationReceived:
    from aiolwm2m.server.events import EventStream

    assert isinstance(stream, EventStream)
    while True:
        ev = await stream.next(3)
        if isinstance(ev, NotificationReceived):
            return ev


@pytest.mark.parametrize("fmt", [None, CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR,
                                 CF.TEXT])
async def test_observe_notify_cancel(server: LwM2MServer, registered: AiocoapDevice,
                                     fmt: int | None) -> None:
    events = server.events.stream()
    resp = await server.observe("dev-1", "/3303/0/5700", format=fmt)
    assert resp.code == Code.CONTENT and resp.token
    assert resp.content == SingleResource(5700, ResourceType.FLOAT, 21.5)
    assert len(registered.observations) == 1
    for value in (22.0, 23.5):
        registered.set_value("/3303/0/5700", value)
        ev = await next_notification(events)
        assert ev.registration.endpoint == "dev-1"
        assert ev.observation.paths == ("/3303/0/5700",)
        assert ev.response.content == SingleResource(5700, ResourceType.FLOAT, value)
    assert await server.cancel_observation("dev-1", "/3303/0/5700")
    await wait_for(lambda: not registered.observations)
    assert not server.observations.for_registration(server.registrations["dev-1"].id)
    assert not await server.cancel_observation("dev-1", "/3303/0/5700")


async def test_passive_cancel_resets_next_notification(server: LwM2MServer,
                                                       registered: AiocoapDevice) -> None:
    await server.observe("dev-1", "/3/0/9")
    assert await server.cancel_observation("dev-1", "/3/0/9", active=False)
    assert len(registered.observations) == 1
    registered.set_value("/3/0/9", 50)
    await wait_for(lambda: not registered.observations)


async def test_observe_instance(server: LwM2MServer, registered: AiocoapDevice) -> None:
    events = server.events.stream()
    resp = await server.observe("dev-1", "/3303/0")
    assert resp.code == Code.CONTENT
    registered.set_value("/3303/0/5700", 99.5)
    ev = await next_notification(events)
    assert ev.response.content.resources[5700].value == 99.5  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", [CF.SENML_JSON, CF.SENML_CBOR])
async def test_observe_composite(server: LwM2MServer, registered: AiocoapDevice,
                                 fmt: int) -> None:
    events = server.events.stream()
    resp = await server.observe_composite("dev-1", ["/3/0/9", "/3303/0/5700"], format=fmt)
    assert resp.code == Code.CONTENT and resp.composite is not None
    assert resp.composite[LwM2MPath(3, 0, 9)].value == 87  # type: ignore[union-attr]
    registered.set_value("/3303/0/5700", -4.5)
    ev = await next_notification(events)
    assert ev.observation.composite
    assert ev.response.composite is not None
    assert ev.response.composite[LwM2MPath(3303, 0, 5700)].value == -4.5  # type: ignore[union-attr]
    assert await server.cancel_observation("dev-1", ["/3/0/9", "/3303/0/5700"])
    await wait_for(lambda: not registered.observations)


async def test_observations_end_with_registration(server: LwM2MServer,
                                                  registered: AiocoapDevice) -> None:
    events = server.events.stream()
    await server.observe("dev-1", "/3/0/9")
    await registered.deregister()
    while True:
        ev = await events.next(3)
        if isinstance(ev, ObservationEnded):
            break
    assert ev.reason == "deregistered"
    assert len(server.observations) == 0


async def test_observe_missing_resource(server: LwM2MServer, registered: AiocoapDevice) -> None:
    resp = await server.observe("dev-1", "/3/0/77")
    assert resp.code == Code.NOT_FOUND
    assert len(server.observations) == 0


@pytest.mark.parametrize("fmt", [CF.SENML_JSON, CF.SENML_CBOR])
async def test_send(server: LwM2MServer, registered: AiocoapDevice, fmt: int) -> None:
    events = server.events.stream()
    resp = await registered.send(["/3/0/9", "/3303/0/5700"], fmt)
    assert resp.code == C.CHANGED
    while True:
        ev = await events.next(3)
        if isinstance(ev, SendReceived):
            break
    nodes = ev.values[0].nodes
    assert nodes[LwM2MPath(3, 0, 9)] == SingleResource(9, ResourceType.INTEGER, 87)
    assert nodes[LwM2MPath(3303, 0, 5700)] == SingleResource(5700, ResourceType.FLOAT, 21.5)


async def test_send_errors(server: LwM2MServer, device: AiocoapDevice) -> None:
    import aiocoap

    device.server_uri = uri(server)
    resp = await device.send(["/3/0/9"])
    assert resp.code == C.NOT_FOUND  # not registered
    await device.register(uri(server))
    assert device.context is not None
    bad = aiocoap.Message(code=C.POST, uri=f"{uri(server)}/dp", payload=b"{}",
                          content_format=50)
    assert (await device.context.request(bad).response).code == C.UNSUPPORTED_CONTENT_FORMAT
    bad = aiocoap.Message(code=C.POST, uri=f"{uri(server)}/dp", payload=b"[{]",
                          content_format=110)
    resp = await device.context.request(bad).response
    assert resp.code == C.BAD_REQUEST and resp.payload
