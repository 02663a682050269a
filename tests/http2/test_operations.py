"""Every device-management operation, observe and Send between our client and our server
over HTTP/2 (binding H): the server's API is the one it offers over CoAP, unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ObjectInstance
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import NotificationReceived, SendReceived

CF = ContentFormat


@pytest.fixture
async def setup() -> AsyncIterator[tuple[LwM2MServer, LwM2MClient]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, http2_port=0, store="memory"))
    await server.start()
    client = LwM2MClient(
        ClientConfig.development("h2-ops", f"http2://[::1]:{server.port_of('http2')}",
                                 host="::1"),
        objects=[TemperatureInstance(0)])
    await client.start()
    await client.wait_registered(5)
    try:
        yield server, client
    finally:
        await client.stop()
        await server.stop()


async def test_every_operation_over_http2(setup: tuple[LwM2MServer, LwM2MClient]) -> None:
    server, client = setup
    ep = "h2-ops"
    reg = server.registrations[ep]
    assert reg.transport == "http2" and reg.binding == "H"
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
    assert (await server.read(ep, "/3303/9", timeout=5)).code == Code.NOT_FOUND
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
