"""Queue mode: the client sleeps after its awake window (its radio off: requests are not
answered), wakes on its own activity and sends an Update first, then the server delivers
what it queued meanwhile."""

from __future__ import annotations

import pytest

from aiolwm2m.client import Awake, ManualClock, Sleeping
from aiolwm2m.client.clock import settle
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.errors import ServerError
from aiolwm2m.server.events import (
    NotificationReceived,
    QueuedRequestFinished,
    SendReceived,
    Updated,
)
from aiolwm2m.store.records import DONE, QueuedRequest

from .conftest import ClientFactory, FakeClock, next_event


async def test_sleep_queue_and_wake(server: LwM2MServer, make_client: ClientFactory,
                                    clock: ManualClock, server_clock: FakeClock) -> None:
    client = await make_client(server_port=server.port, clock=clock, queue_mode=True,
                               awake_time=10.0)
    assert server.registrations["dev-1"].queue_mode
    stream = client.events.stream()
    events = server.events.stream()
    assert (await server.read("dev-1", "/3/0/2")).code == Code.CONTENT
    await server.observe("dev-1", "/3303/0/5700")
    await clock.advance(9.5)
    assert not client.asleep
    await clock.advance(0.5)
    assert isinstance(await stream.until(Sleeping), Sleeping) and client.asleep
    # Asleep: the radio is off, the server's request is never answered.
    with pytest.raises((ServerError, TimeoutError)):
        await server.read("dev-1", "/3/0/2", timeout=0.5)
    # The server's own idea of the client: asleep after its awake time; requests queue.
    server_clock.advance(31)
    await server.tick()
    queued = await server.submit("dev-1", ReadRequest(LwM2MPath(3, 0, 2)))
    assert isinstance(queued, QueuedRequest)
    # A change of an observed value is the client's own activity: it wakes, sends an
    # Update (which makes the server flush its queue), then the notification.
    client.instance(3303).set(5700, 30.5)
    await stream.until(Awake)
    await next_event(events, Updated)
    done = await next_event(events, QueuedRequestFinished)
    assert done.request.id == queued.id and done.request.state == DONE
    note = await next_event(events, NotificationReceived)
    assert note.response.content.value == 30.5  # type: ignore[union-attr]
    # Awake again for awake_time, then asleep again; a Send wakes it as well.
    await clock.advance(10)
    await stream.until(Sleeping)
    await client.send(["/3303/0/5700"])
    await next_event(events, SendReceived)
    assert not client.asleep
    await settle()
