"""Notification attributes end to end: the client runs on a manual clock, the server
observes over UDP, and every notification (or its absence) is checked at the server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import Instance, LwM2MClient, ManualClock, TemperatureInstance, resource
from aiolwm2m.client.clock import settle
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import EventStream, NotificationReceived

from .conftest import ClientFactory, next_event, no_event

PATH = "/3303/0/5700"


class Polled(Instance, object_id=3300):
    """A sensor nobody reports changes of: only epmax sampling sees them."""

    sensor_value = resource(5700)

    def __init__(self, iid: int = 0) -> None:
        super().__init__(iid)
        self.reading = 1.0

    @sensor_value.reader
    def _read(self) -> float:
        return self.reading


@pytest.fixture
async def observed(server: LwM2MServer, make_client: ClientFactory, clock: ManualClock
                   ) -> AsyncIterator[tuple[LwM2MClient, EventStream, TemperatureInstance]]:
    client = await make_client(server_port=server.port, clock=clock,
                               objects=[TemperatureInstance(0), Polled(0)])
    temperature = client.instance(3303)
    assert isinstance(temperature, TemperatureInstance)
    yield client, server.events.stream(), temperature


async def value_of(events: EventStream) -> float:
    note = await next_event(events, NotificationReceived)
    value: float = note.response.content.value
    return value


async def test_pmin_holds_changes_and_pmax_forces_notifications(
        server: LwM2MServer, observed: tuple[LwM2MClient, EventStream, TemperatureInstance],
        clock: ManualClock) -> None:
    _, events, temperature = observed
    assert (await server.write_attributes("dev-1", PATH, pmin=10, pmax=60)).code == 0x44
    assert (await server.observe("dev-1", PATH)).content.value == 20.0  # type: ignore[union-attr]
    await clock.advance(2)
    temperature.measure(21.0)
    await settle()
    assert await no_event(events, NotificationReceived)  # pmin not elapsed
    await clock.advance(7.9)
    assert await no_event(events, NotificationReceived, 0.2)
    await clock.advance(0.1)  # t = 10: the held change goes out
    assert await value_of(events) == 21.0
    await clock.advance(59.9)
    assert await no_event(events, NotificationReceived, 0.2)
    await clock.advance(0.1)  # pmax after the last notification: sent although unchanged
    assert await value_of(events) == 21.0
    await clock.advance(60)
    assert await value_of(events) == 21.0


async def test_gt_lt_thresholds(server: LwM2MServer,
                                observed: tuple[LwM2MClient, EventStream, TemperatureInstance]
                                ) -> None:
    _, events, temperature = observed
    await server.write_attributes("dev-1", PATH, gt=25, lt=15)
    await server.observe("dev-1", PATH)
    temperature.measure(22.0)  # 20 -> 22 crosses nothing
    assert await no_event(events, NotificationReceived)
    temperature.measure(26.0)  # crosses gt upwards
    assert await value_of(events) == 26.0
    temperature.measure(28.0)
    assert await no_event(events, NotificationReceived)
    temperature.measure(24.0)  # crosses gt downwards
    assert await value_of(events) == 24.0
    temperature.measure(14.5)  # crosses lt
    assert await value_of(events) == 14.5


async def test_step(server: LwM2MServer,
                    observed: tuple[LwM2MClient, EventStream, TemperatureInstance]) -> None:
    _, events, temperature = observed
    await server.write_attributes("dev-1", PATH, st=2)
    await server.observe("dev-1", PATH)
    temperature.measure(21.5)
    assert await no_event(events, NotificationReceived)
    temperature.measure(22.0)  # 2.0 away from the last notified 20.0
    assert await value_of(events) == 22.0
    temperature.measure(23.0)
    assert await no_event(events, NotificationReceived)


async def test_inherited_attributes_and_server_defaults(
        server: LwM2MServer, observed: tuple[LwM2MClient, EventStream, TemperatureInstance],
        clock: ManualClock) -> None:
    _, events, temperature = observed
    # Default Maximum Period of the Server object, overridden at object level.
    await server.write("dev-1", "/1/0/3", 100)
    await server.write_attributes("dev-1", "/3303", pmax=30)
    await server.observe("dev-1", "/3303/0")
    await clock.advance(29.5)
    assert await no_event(events, NotificationReceived, 0.2)
    await clock.advance(0.5)
    note = await next_event(events, NotificationReceived)
    assert note.response.content.resources[5700].value == 20.0  # type: ignore[union-attr]
    temperature.measure(19.0)  # any change of the instance is notified (no pmin)
    note = await next_event(events, NotificationReceived)
    assert note.response.content.resources[5700].value == 19.0  # type: ignore[union-attr]


async def test_epmax_samples_values_nobody_reports(
        server: LwM2MServer, observed: tuple[LwM2MClient, EventStream, TemperatureInstance],
        clock: ManualClock) -> None:
    client, events, _ = observed
    polled = client.instance(3300)
    assert isinstance(polled, Polled)
    await server.write_attributes("dev-1", "/3300/0/5700", epmax=5, epmin=1)
    await server.observe("dev-1", "/3300/0/5700")
    await clock.advance(5)
    assert await no_event(events, NotificationReceived, 0.2)  # sampled, unchanged
    polled.reading = 7.5
    await clock.advance(5)
    assert await value_of(events) == 7.5
