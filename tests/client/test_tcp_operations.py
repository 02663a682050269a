"""Every device-management operation, observe, Send and a firmware pull, with the client
and the server talking CoAP over TCP (binding T) only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import (
    ClientConfig,
    FirmwareUpdateInstance,
    LwM2MClient,
    TemperatureInstance,
)
from aiolwm2m.client.objects.firmware import IDLE, SUCCESS
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ObjectInstance
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint

CF = ContentFormat
IMAGE = os.urandom(100 * 1024)


class Image(Resource):
    def render_get(self, request: Message) -> Message:
        return request.response(Code.CONTENT, IMAGE, 42)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[LwM2MServer, LwM2MClient, list[bytes], TcpEndpoint]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=0, store="memory"))
    await server.start()
    site = Site()
    site.add("fw.bin", Image())
    images = await TcpEndpoint.create("::1", 0, site=site)
    installed: list[bytes] = []

    async def install(image: bytes) -> bool:
        installed.append(image)
        return True

    client = LwM2MClient(
        ClientConfig.development("tcp-ops", f"coap+tcp://[::1]:{server.port_of('tcp')}",
                                 host="::1"),
        objects=[TemperatureInstance(0), FirmwareUpdateInstance(0, updater=install)])
    await client.start()
    await client.wait_registered(5)
    try:
        yield server, client, installed, images
    finally:
        await client.stop()
        await images.close()
        await server.stop()


async def test_every_operation_over_tcp(
        setup: tuple[LwM2MServer, LwM2MClient, list[bytes], TcpEndpoint]) -> None:
    server, client, _, _ = setup
    ep = "tcp-ops"
    reg = server.registrations[ep]
    assert reg.transport == "tcp" and reg.binding == "T"
    for fmt in (CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.LWM2M_CBOR):
        resp = await server.read(ep, "/3/0", format=fmt, timeout=5)
        assert resp.code == Code.CONTENT and isinstance(resp.content, ObjectInstance)
    assert (await server.read(ep, "/3/0/0", format=CF.TEXT, timeout=5)).code == Code.CONTENT
    disc = await server.discover(ep, "/3303/0", timeout=5)
    assert LwM2MPath(3303, 0, 5700) in {link.path for link in disc.links}
    assert (await server.write(ep, "/3/0/14", "+06:00", timeout=5)).code == Code.CHANGED
    assert (await server.read(ep, "/3/0/14", timeout=5)).content.value == "+06:00"  # type: ignore[union-attr]
    resp = await server.write_attributes(ep, "/3303/0/5700", pmin=0, pmax=1, timeout=5)
    assert resp.code == Code.CHANGED
    created = await server.create(ep, "/3303", {5700: 10.5}, instance_id=9, timeout=5)
    assert created.code == Code.CREATED
    assert (await server.delete(ep, "/3303/9", timeout=5)).code == Code.DELETED
    comp = await server.read_composite(ep, ["/3/0/0", "/3303/0/5700"], timeout=5)
    assert comp.code == Code.CONTENT and len(comp.content) == 2
    resp = await server.write_composite(ep, {"/3/0/14": "+07:00"}, timeout=5)
    assert resp.code == Code.CHANGED
    assert (await server.execute(ep, "/1/0/8", timeout=5)).code == Code.CHANGED

    events = server.events.stream()
    obs = await server.observe(ep, "/3303/0/5700", timeout=5)
    assert obs.code == Code.CONTENT
    assert isinstance(await events.until(NotificationReceived, timeout=5), NotificationReceived)
    comp_obs = await server.observe_composite(ep, ["/3/0/9", "/3303/0/5700"], timeout=5)
    assert comp_obs.code == Code.CONTENT
    await client.send(["/3303/0/5700"])
    sent = await events.until(SendReceived, timeout=5)
    assert isinstance(sent, SendReceived)
    assert await server.cancel_observation(ep, "/3303/0/5700")


async def test_firmware_pull_over_tcp(
        setup: tuple[LwM2MServer, LwM2MClient, list[bytes], TcpEndpoint]) -> None:
    server, _, installed, images = setup
    ep = "tcp-ops"
    support = (await server.read(ep, "/5/0/8", timeout=5)).content
    assert 4 in support.instances.values()  # type: ignore[union-attr]
    await server.write(ep, "/5/0/1", f"coap+tcp://[::1]:{images.port}/fw.bin", timeout=5)
    for _ in range(100):
        state = (await server.read(ep, "/5/0/3", timeout=5)).content.value  # type: ignore[union-attr]
        if state == 2:  # downloaded
            break
        await asyncio.sleep(0.05)
    assert state == 2
    assert (await server.execute(ep, "/5/0/2", timeout=5)).code == Code.CHANGED
    for _ in range(100):
        inst = (await server.read(ep, "/5/0", timeout=5)).content
        if (inst.resources[3].value, inst.resources[5].value) == (IDLE, SUCCESS):  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    assert installed == [IMAGE]
