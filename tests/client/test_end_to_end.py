"""The client against the aiolwm2m server over real UDP loopback sockets."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.client import (
    Deregistered,
    Disabled,
    LwM2MClient,
    Registered,
    SendMuted,
    TemperatureInstance,
    Updated,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ResourceType, SingleResource
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import Deregistered as ServerDeregistered
from aiolwm2m.server.events import Registered as ServerRegistered
from aiolwm2m.server.events import SendReceived
from aiolwm2m.server.events import Updated as ServerUpdated

from .conftest import ClientFactory, eventually, next_event, no_event

CF = ContentFormat


async def test_register_payload_and_identity(server: LwM2MServer,
                                             make_client: ClientFactory) -> None:
    client: LwM2MClient = await make_client(server_port=server.port, lifetime=120)
    reg = server.registrations["dev-1"]
    assert (reg.lifetime, reg.lwm2m_version, reg.binding) == (120, "1.1", "U")
    assert reg.content_formats == (CF.SENML_JSON,)  # 1.1: one preferred format
    listed = {(o.object_id, o.instance_id) for o in reg.objects}
    assert {(1, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (3303, 0)} <= listed
    assert not any(o.object_id == 0 for o in reg.objects)  # Security is never listed
    assert reg.object_version(1) == "1.1"
    assert client.registered


@pytest.mark.parametrize("fmt", [None, CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR,
                                 CF.LWM2M_JSON])
async def test_read_every_level_and_format(server: LwM2MServer, make_client: ClientFactory,
                                           fmt: int | None) -> None:
    await make_client(server_port=server.port)
    for path in ("/3", "/3/0", "/3/0/2", "/3/0/11", "/3/0/11/0"):
        resp = await server.read("dev-1", path, format=fmt)
        assert resp.code == Code.CONTENT, (path, resp.diagnostic)
    resp = await server.read("dev-1", "/3/0/2", format=fmt)
    assert resp.content == SingleResource(2, ResourceType.STRING, "dev-1")


async def test_write_execute_discover_create_delete(server: LwM2MServer,
                                                    make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    assert (await server.write("dev-1", "/3/0/14", "+05:30")).code == Code.CHANGED
    assert client.instance(3).get(14) == "+05:30"
    resp = await server.write("dev-1", "/3303/0", {5750: "kitchen"}, replace=False)
    assert resp.code == Code.CHANGED and client.instance(3303).get(5750) == "kitchen"
    assert (await server.write("dev-1", "/3/0/0", "nope")).code == Code.METHOD_NOT_ALLOWED
    assert (await server.execute("dev-1", "/3/0/4", "")).code == Code.CHANGED
    assert client.instance(3).reboots == 1  # type: ignore[attr-defined]
    assert (await server.execute("dev-1", "/3/0/0")).code == Code.METHOD_NOT_ALLOWED
    disc = await server.discover("dev-1", "/3303")
    assert disc.code == Code.CONTENT
    assert {str(link.path) for link in disc.links} >= {"/3303", "/3303/0", "/3303/0/5700"}
    events = server.events.stream()
    created = await server.create("dev-1", "/3303", {5700: 4.5}, instance_id=3)
    assert created.code == Code.CREATED and created.location == LwM2MPath(3303, 3)
    assert client.instance(3303, 3).get(5700) == 4.5
    # The new instance reaches the server through an Update with the object list.
    ev = await next_event(events, ServerUpdated)
    assert any((o.object_id, o.instance_id) == (3303, 3) for o in ev.registration.objects)
    assert (await server.delete("dev-1", "/3303/3")).code == Code.DELETED
    assert (await server.delete("dev-1", "/3303/3")).code == Code.NOT_FOUND
    assert (await server.read("dev-1", "/0/0")).code == Code.UNAUTHORIZED


async def test_composite_operations(server: LwM2MServer, make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    for fmt in (CF.SENML_JSON, CF.SENML_CBOR):
        resp = await server.read_composite("dev-1", ["/3/0/2", "/3303/0/5700", "/1/0/1"],
                                           format=fmt)
        assert resp.code == Code.CONTENT and resp.format == fmt
        assert resp.content[LwM2MPath(3, 0, 2)].value == "dev-1"  # type: ignore[union-attr]
        assert resp.content[LwM2MPath(1, 0, 1)].value == 300  # type: ignore[union-attr]
    resp2 = await server.write_composite("dev-1", {"/3/0/14": "+01:00", "/3303/0/5750": "x"})
    assert resp2.code == Code.CHANGED
    assert client.instance(3).get(14) == "+01:00" and client.instance(3303).get(5750) == "x"
    events = server.events.stream()
    obs = await server.observe_composite("dev-1", ["/3303/0/5700", "/3/0/9"])
    assert obs.code == Code.CONTENT and obs.composite is not None
    client.instance(3303).set(5700, -3.5)
    from aiolwm2m.server.events import NotificationReceived

    note = await next_event(events, NotificationReceived)
    assert note.response.composite[LwM2MPath(3303, 0, 5700)].value == -3.5


async def test_observe_notifies_changes_and_cancel(server: LwM2MServer,
                                                   make_client: ClientFactory) -> None:
    from aiolwm2m.server.events import NotificationReceived

    client = await make_client(server_port=server.port)
    events = server.events.stream()
    first = await server.observe("dev-1", "/3303/0/5700", format=CF.SENML_CBOR)
    assert first.code == Code.CONTENT and first.content.value == 20.0  # type: ignore[union-attr]
    temperature = client.instance(3303)
    assert isinstance(temperature, TemperatureInstance)
    temperature.measure(23.25)
    note = await next_event(events, NotificationReceived)
    assert note.response.content.value == 23.25  # type: ignore[union-attr]
    assert note.response.format == CF.SENML_CBOR
    assert await server.cancel_observation("dev-1", "/3303/0/5700")
    await eventually(lambda: len(client.observations) == 0)


async def test_send_and_mute_send(server: LwM2MServer, make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    events = server.events.stream()
    client.instance(3303).set(5700, 18.5)
    for fmt in (CF.SENML_CBOR, CF.SENML_JSON):
        await client.send(["/3303/0/5700", "/3/0/2"], format=fmt)
        ev = await next_event(events, SendReceived)
        group = ev.values[0]
        assert group.timestamp is not None
        assert group.nodes[LwM2MPath(3303, 0, 5700)].value == 18.5  # type: ignore[union-attr]
    assert (await server.write("dev-1", "/1/0/23", True)).code == Code.CHANGED
    with pytest.raises(SendMuted):
        await client.send(["/3303/0/5700"], ssid=1)


async def test_updates_on_lifetime_write_and_trigger(server: LwM2MServer,
                                                     make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    stream = client.events.stream()
    events = server.events.stream()
    assert (await server.write("dev-1", "/1/0/1", 600)).code == Code.CHANGED
    ev = await next_event(events, ServerUpdated)
    assert ev.registration.lifetime == 600
    await stream.until(Updated)
    assert (await server.execute("dev-1", "/1/0/8")).code == Code.CHANGED
    await next_event(events, ServerUpdated)
    assert (await server.write("dev-1", "/1/0/7", "X")).code == Code.BAD_REQUEST
    assert client.registered


async def test_disable_deregisters_then_comes_back(server: LwM2MServer,
                                                   make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    stream = client.events.stream()
    events = server.events.stream()
    assert (await server.write("dev-1", "/1/0/5", 1)).code == Code.CHANGED
    assert (await server.execute("dev-1", "/1/0/4")).code == Code.CHANGED
    await next_event(events, ServerDeregistered)
    assert isinstance(await stream.until(Disabled), Disabled)
    await stream.until(Registered, timeout=5)
    await next_event(events, ServerRegistered)


async def test_stop_deregisters(server: LwM2MServer, make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    stream = client.events.stream()
    events = server.events.stream()
    await client.stop()
    await next_event(events, ServerDeregistered)
    assert isinstance(await stream.until(Deregistered), Deregistered)
    assert "dev-1" not in server.registrations


async def test_objects_added_at_run_time_update_the_registration(
        server: LwM2MServer, make_client: ClientFactory) -> None:
    client = await make_client(server_port=server.port)
    events = server.events.stream()
    client.add_object(TemperatureInstance(9))
    ev = await next_event(events, ServerUpdated)
    assert any((o.object_id, o.instance_id) == (3303, 9) for o in ev.registration.objects)
    await asyncio.sleep(0)


async def test_device_hooks_errors_statistics_location(server: LwM2MServer,
                                                       make_client: ClientFactory) -> None:
    from aiolwm2m.client import DeviceInstance, LocationInstance

    calls: list[str] = []

    async def reboot() -> None:
        calls.append("reboot")

    device = DeviceInstance(0, on_reboot=reboot,
                            on_factory_reset=lambda: calls.append("factory-reset"))
    location = LocationInstance(0)
    await make_client(server_port=server.port, objects=[device, location,
                                                        TemperatureInstance(0)])
    assert (await server.execute("dev-1", "/3/0/4")).code == Code.CHANGED
    assert (await server.execute("dev-1", "/3/0/5")).code == Code.CHANGED
    assert calls == ["reboot", "factory-reset"]
    device.add_error(5)
    errors = (await server.read("dev-1", "/3/0/11")).content
    assert dict(errors.instances) == {0: 5}  # type: ignore[union-attr]
    assert (await server.execute("dev-1", "/3/0/12")).code == Code.CHANGED
    errors = (await server.read("dev-1", "/3/0/11")).content
    assert dict(errors.instances) == {0: 0}  # type: ignore[union-attr]
    # Connectivity Statistics count the client's own traffic between Start and Stop.
    assert (await server.execute("dev-1", "/7/0/6")).code == Code.CHANGED
    for _ in range(3):
        await server.read("dev-1", "/3/0")
    average = (await server.read("dev-1", "/7/0/5")).content.value  # type: ignore[union-attr]
    assert average > 0
    assert (await server.execute("dev-1", "/7/0/7")).code == Code.CHANGED
    frozen = (await server.read("dev-1", "/7/0/5")).content.value  # type: ignore[union-attr]
    await server.read("dev-1", "/3/0")
    assert (await server.read("dev-1", "/7/0/5")).content.value == frozen  # type: ignore[union-attr]
    location.move_to(52.23, 21.01, 100.0, at=1_700_000_000)
    fix = (await server.read("dev-1", "/6/0")).content
    assert fix.resources[0].value == 52.23  # type: ignore[union-attr]
    assert int(fix.resources[5].value.timestamp()) == 1_700_000_000  # type: ignore[union-attr]


async def test_update_before_the_lifetime_ends(server: LwM2MServer, make_client: ClientFactory
                                               ) -> None:
    from aiolwm2m.client import ManualClock

    clock = ManualClock()
    client = await make_client(server_port=server.port, clock=clock, lifetime=60)
    events = server.events.stream()
    margin = client.config.transmission.max_transmit_wait  # 1.4 s with the fast timers
    await clock.advance(60 - margin - 0.5)
    assert await no_event(events, ServerUpdated, 0.3)
    await clock.advance(0.5)
    updated = await next_event(events, ServerUpdated)
    assert updated.registration.lifetime == 60
    await clock.advance(60 - margin)  # and again, a lifetime later
    await next_event(events, ServerUpdated)
