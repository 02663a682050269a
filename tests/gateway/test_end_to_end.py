"""A gateway and its end devices registered with our server over loopback UDP: the server
learns the end devices from /25, and every operation reaches the right one."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.client import TemperatureInstance
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.gateway import EndDeviceName, LwM2MGateway, TreeEndDevice
from aiolwm2m.gateway.events import EndDeviceAdded, EndDeviceChanged, EndDeviceRemoved
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ResourceType, SingleResource
from aiolwm2m.server import LwM2MServer, NotRegistered
from aiolwm2m.server.events import NotificationReceived, ObservationEnded

from .conftest import GatewayFactory, eventually, next_event

CF = ContentFormat


def _ended_on_server(server: LwM2MServer, gateway: str) -> bool:
    return not any(r.gateway == gateway for r in server.end_devices)


async def test_fifty_end_devices_read_and_observed(server: LwM2MServer,
                                                   make_gateway: GatewayFactory) -> None:
    gateway: LwM2MGateway = await make_gateway(server.port, end_devices=50)
    await eventually(lambda: len(server.end_devices) == 50)
    reg = server.registration("gw-1")
    records = {r.prefix: r for r in server.end_devices.records(reg.id)}
    assert sorted(records) == sorted(f"dev{i}" for i in range(50))
    assert records["dev7"].device_id == "urn:dev:ops:gw-1-7"
    assert {(o.object_id, o.instance_id) for o in records["dev7"].objects} >= {(3, 0),
                                                                              (3303, 0)}
    # Every end device answers with its own value, through prefixed paths or names.
    for i in range(50):
        expected = round(20.0 + (i % 50) / 10, 1)
        resp = await server.read("gw-1", f"/dev{i}/3303/0/5700")
        assert resp.code == Code.CONTENT, resp.diagnostic
        assert resp.content == SingleResource(5700, ResourceType.FLOAT, expected)
    view = server.registration(EndDeviceName("gw-1", "dev3"))
    assert (view.address, view.transport) == (reg.address, reg.transport)
    assert view.endpoint == "gw-1/dev3" and isinstance(view.endpoint, EndDeviceName)
    # Observations of ten end devices; each change notifies its own observer.
    events = server.events.stream()
    for i in range(10):
        assert (await server.observe("gw-1", f"/dev{i}/3303/0/5700")).code == Code.CONTENT
    for i in range(10):
        sensor = gateway.end_device(f"dev{i}").tree.get(3303, 0)  # type: ignore[attr-defined]
        sensor.measure(40.0 + i)
    seen: dict[str, float] = {}
    async with asyncio.timeout(10):
        while len(seen) < 10:
            ev = await next_event(events, NotificationReceived)
            seen[ev.registration.endpoint] = ev.response.content.value
    assert seen == {f"gw-1/dev{i}": 40.0 + i for i in range(10)}
    assert len(server.observations.for_registration(
        server.registration(EndDeviceName("gw-1", "dev2")).id)) == 1


@pytest.mark.parametrize("fmt", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON,
                                 CF.LWM2M_CBOR])
async def test_every_format_reads_an_end_device(server: LwM2MServer,
                                                make_gateway: GatewayFactory,
                                                fmt: int) -> None:
    await make_gateway(server.port, end_devices=2)
    await eventually(lambda: len(server.end_devices) == 2)
    for path in ("/dev1/3303", "/dev1/3303/0", "/dev1/3303/0/5700", "/dev1/3/0/11/0"):
        resp = await server.read("gw-1", path, format=fmt)
        assert resp.code == Code.CONTENT, (path, resp.diagnostic)
    resp = await server.read("gw-1", "/dev1/3303/0", format=fmt)
    assert resp.content.resources[5700].value == 20.1  # type: ignore[union-attr]


async def test_operations_reach_the_end_device(server: LwM2MServer,
                                               make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(server.port, end_devices=3)
    await eventually(lambda: len(server.end_devices) == 3)
    dev1 = gateway.end_device("dev1")
    sensor = dev1.tree.get(3303, 0)
    other = gateway.end_device("dev2").tree.get(3303, 0)
    assert (await server.write("gw-1", "/dev1/3303/0/5750", "kitchen")).code == Code.CHANGED
    assert sensor.get(5750) == "kitchen" and other.get(5750) is None
    for fmt in (CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR, CF.TLV):
        resp = await server.write("gw-1", "/dev1/3303/0", {5750: f"room {fmt}"},
                                  replace=False, format=fmt)
        assert resp.code == Code.CHANGED and sensor.get(5750) == f"room {fmt}"
    sensor.measure(5.0)
    assert (await server.execute("gw-1", "/dev1/3303/0/5605")).code == Code.CHANGED
    assert sensor.get(5601) is None
    disc = await server.discover("gw-1", "/dev1/3303/0")
    # The Gateway TS: Discover answers carry no prefix.
    assert disc.code == Code.CONTENT and "/3303/0/5700" in {str(link.path) for link in
                                                            disc.links}
    wa = await server.write_attributes("gw-1", "/dev1/3303/0/5700", pmin=1, pmax=60)
    assert wa.code == Code.CHANGED
    composite = await server.read_composite("gw-1", ["/dev1/3303/0/5700", "/dev1/3/0/2"])
    assert composite.code == Code.CONTENT
    assert composite.content[LwM2MPath(3, 0, 2)].value == "gw-1-1"  # type: ignore[index]
    wc = await server.write_composite("gw-1", {"/dev1/3303/0/5750": "hall",
                                               "/dev1/3/0/14": "+01:00"})
    assert wc.code == Code.CHANGED, wc.diagnostic
    assert sensor.get(5750) == "hall" and dev1.tree.get(3, 0).get(14) == "+01:00"
    # Create: the gateway announces the end device anew, the server follows.
    events = server.events.stream()
    created = await server.create("gw-1", "/dev1/3303", {5700: 1.5})
    assert created.code == Code.CREATED and created.location == LwM2MPath(3303, 1)
    assert dev1.tree.get(3303, 1).get(5700) == 1.5
    changed = await next_event(events, EndDeviceChanged)
    assert changed.registration.endpoint == EndDeviceName("gw-1", "dev1")
    assert any((o.object_id, o.instance_id) == (3303, 1) for o in changed.registration.objects)
    assert (await server.delete("gw-1", "/dev1/3303/1")).code == Code.DELETED
    assert dev1.tree.get(3303, 1) is None


async def test_composite_observe_and_cancel(server: LwM2MServer,
                                            make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(server.port, end_devices=2)
    await eventually(lambda: len(server.end_devices) == 2)
    events = server.events.stream()
    resp = await server.observe_composite("gw-1", ["/dev0/3303/0/5700", "/dev0/3/0/14"])
    assert resp.code == Code.CONTENT, resp.diagnostic
    gateway.end_device("dev0").tree.get(3303, 0).measure(33.0)
    note = await next_event(events, NotificationReceived)
    assert note.response.composite[LwM2MPath(3303, 0, 5700)].value == 33.0
    assert await server.cancel_observation("gw-1", ["/dev0/3303/0/5700", "/dev0/3/0/14"])
    assert not gateway.end_device("dev0").observations
    with pytest.raises(ValueError, match="one device"):
        await server.read_composite("gw-1", ["/dev0/3303/0/5700", "/dev1/3303/0/5700"])


async def test_end_devices_come_and_go(server: LwM2MServer,
                                       make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(server.port, end_devices=2)
    await eventually(lambda: len(server.end_devices) == 2)
    events = server.events.stream()
    gateway.add_end_device(TreeEndDevice("late", [TemperatureInstance(0, sensor_value=9.0)],
                                         device_id="urn:dev:late"))
    added = await next_event(events, EndDeviceAdded)
    assert added.registration.endpoint == EndDeviceName("gw-1", "late")
    assert (await server.read("gw-1", "/late/3303/0/5700")).content.value == 9.0
    await server.observe("gw-1", "/dev0/3303/0/5700")
    gateway.remove_end_device("dev0")
    # The observation ends (the gateway's 4.04 notification, or the removal: whichever
    # comes first), and the end device goes.
    seen: dict[type, object] = {}
    async with asyncio.timeout(5):
        while len(seen) < 2:
            ev = await events.next()
            if isinstance(ev, EndDeviceRemoved | ObservationEnded):
                seen[type(ev)] = ev
    removed = seen[EndDeviceRemoved]
    assert isinstance(removed, EndDeviceRemoved)
    assert removed.registration.endpoint == EndDeviceName("gw-1", "dev0")
    ended = seen[ObservationEnded]
    assert isinstance(ended, ObservationEnded) and ended.observation.paths == (
        "/3303/0/5700",)
    with pytest.raises(NotRegistered):
        await server.read("gw-1", "/dev0/3303/0/5700")
    # The gateway deregisters: its end devices go with it.
    await gateway.stop()
    removed = await next_event(events, EndDeviceRemoved)
    assert removed.reason == "deregistered"
    await eventually(lambda: _ended_on_server(server, "gw-1"))
    assert len(server.end_devices) == 0


async def test_gateway_without_end_devices_at_register(server: LwM2MServer,
                                                       make_gateway: GatewayFactory) -> None:
    """Real gateways list no end device when they register; they come with Updates."""
    gateway = await make_gateway(server.port, end_devices=0)
    reg = server.registration("gw-1")
    assert not any(o.object_id == 25 and o.instance_id is not None for o in reg.objects)
    events = server.events.stream()
    gateway.add_end_devices([TreeEndDevice(f"n{i}", [TemperatureInstance(0)])
                             for i in range(3)])
    for _ in range(3):
        await next_event(events, EndDeviceAdded)
    assert sorted(r.prefix for r in server.end_devices) == ["n0", "n1", "n2"]
    assert (await server.read("gw-1", "/n2/3303/0/5700")).code == Code.CONTENT


async def test_gateway_answers_unknown_prefixes_and_guards_25(
        server: LwM2MServer, make_gateway: GatewayFactory) -> None:
    await make_gateway(server.port, end_devices=1)
    await eventually(lambda: len(server.end_devices) == 1)
    reg = server.registration("gw-1")
    udp = server.udp
    for method, path, code in [(Code.GET, ["nope", "3303", "0"], Code.NOT_FOUND),
                               (Code.GET, ["dev0", "9999"], Code.NOT_FOUND),
                               (Code.POST, ["25"], Code.METHOD_NOT_ALLOWED),
                               (Code.DELETE, ["25", "0"], Code.METHOD_NOT_ALLOWED),
                               (Code.GET, ["dev0", "3303", "0", "5700"], Code.CONTENT)]:
        reply = await udp.request(Message.request(method, path), reg.address, timeout=5)
        assert reply.code == code, (path, reply.code, reply.payload)
    assert b"nope" in (await udp.request(Message.request(Code.GET, ["nope"]), reg.address,
                                         timeout=5)).payload


async def test_read_composite_across_end_devices_at_the_gateway(
        server: LwM2MServer, make_gateway: GatewayFactory) -> None:
    """The Gateway TS lets one Read-Composite name several devices; the gateway answers
    with every part (our server asks one device at a time, so this goes raw)."""
    from aiolwm2m.lwm2m.formats import decode_composite, encode_paths
    from aiolwm2m.lwm2m.formats.prefixed_names import split_by_prefix

    await make_gateway(server.port, end_devices=2)
    await eventually(lambda: len(server.end_devices) == 2)
    reg = server.registration("gw-1")
    names = encode_paths(CF.SENML_JSON, [LwM2MPath(3303, 0, 5700)])
    from aiolwm2m.lwm2m.formats.prefixed_names import add_prefix, join

    payload = join(CF.SENML_JSON, [add_prefix(CF.SENML_JSON, names, "dev0"),
                                   add_prefix(CF.SENML_JSON, names, "dev1"),
                                   encode_paths(CF.SENML_JSON, [LwM2MPath(3, 0, 2)])])
    request = Message.request(Code.FETCH, [], payload=payload,
                              content_format=CF.SENML_JSON, accept=CF.SENML_JSON)
    reply = await server.udp.request(request, reg.address, timeout=5)
    assert reply.code == Code.CONTENT, reply.payload
    parts = split_by_prefix(CF.SENML_JSON, reply.payload)
    model = server.context("gw-1").model
    assert decode_composite(CF.SENML_JSON, parts["dev0"], None, model)[
        LwM2MPath(3303, 0, 5700)].value == 20.0
    assert decode_composite(CF.SENML_JSON, parts["dev1"], None, model)[
        LwM2MPath(3303, 0, 5700)].value == 20.1
    assert decode_composite(CF.SENML_JSON, parts[None], None, model)[
        LwM2MPath(3, 0, 2)].value == "gw-1"
