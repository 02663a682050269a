"""Queue mode with an injected clock: awake/sleeping, the persisted queue, TTLs."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.lwm2m.operations import ReadRequest, WriteRequest
from aiolwm2m.server import DeviceSleeping, LwM2MServer
from aiolwm2m.server.events import Awake, EventStream, QueuedRequestFinished, Sleeping
from aiolwm2m.server.queue_mode import QueueExpired
from aiolwm2m.store.records import DONE, EXPIRED, PENDING, QueuedRequest

from .aiocoap_device import AiocoapDevice, wait_for
from .conftest import FakeClock, uri


async def until(stream: EventStream, kind: type) -> object:
    while True:
        ev = await stream.next(3)
        if isinstance(ev, kind):
            return ev


async def test_awake_sleeping_and_queue_flush(server: LwM2MServer, device: AiocoapDevice,
                                              clock: FakeClock) -> None:
    events = server.events.stream()
    assert (await device.register(uri(server), queue=True)).code == C.CREATED
    reg = server.registrations["dev-1"]
    assert reg.queue_mode
    await until(events, Awake)
    # Awake: requests go straight through.
    resp = await server.read("dev-1", "/3/0/9")
    assert resp.code == Code.CONTENT
    clock.advance(31)
    await server.tick()
    assert isinstance(await until(events, Sleeping), Sleeping)
    # Asleep: the request is queued and the device sees nothing.
    seen = len(device.requests)
    queued = await server.submit("dev-1", ReadRequest(LwM2MPath(3, 0, 9)))
    assert isinstance(queued, QueuedRequest) and queued.state == PENDING
    with pytest.raises(DeviceSleeping):
        await server.send_or_queue("dev-1", ReadRequest(LwM2MPath(3, 0, 0)))
    write = server.build("dev-1", "/3/0/14", "+03:00")
    waiting = asyncio.create_task(server.send(
        "dev-1", WriteRequest(LwM2MPath(3, 0, 14), write)))
    await asyncio.sleep(0.05)
    assert len(device.requests) == seen and not waiting.done()
    # The device wakes (Update): the queue is sent in order.
    assert (await device.update()).code == C.CHANGED
    assert isinstance(await until(events, Awake), Awake)
    results = [await until(events, QueuedRequestFinished) for _ in range(3)]
    finished = [r.request for r in results]  # type: ignore[attr-defined]
    assert [q.state for q in finished] == [DONE, DONE, DONE]
    assert finished[0].id == queued.id
    assert finished[0].result["code"] == "2.05"
    resp = await asyncio.wait_for(waiting, 3)
    assert resp.code == Code.CHANGED
    assert device.state.objects[3][0].resources[14].value == "+03:00"  # type: ignore[union-attr]
    stored = await server.queued_request(queued.id)
    assert stored is not None and stored.state == DONE and stored.result is not None


async def test_queued_request_ttl_expires(server: LwM2MServer, device: AiocoapDevice,
                                          clock: FakeClock) -> None:
    events = server.events.stream()
    await device.register(uri(server), queue=True)
    clock.advance(31)
    await server.tick()
    waiter = asyncio.create_task(server.send("dev-1", ReadRequest(LwM2MPath(3, 0, 9)),
                                             queue_ttl=10))
    await wait_for(lambda: server.queue.store._pending)  # type: ignore[attr-defined]
    clock.advance(11)
    await server.tick()
    ev = await until(events, QueuedRequestFinished)
    assert ev.request.state == EXPIRED  # type: ignore[attr-defined]
    with pytest.raises(QueueExpired):
        await asyncio.wait_for(waiter, 3)
    # The device wakes later: nothing is sent for the expired request.
    seen = len(device.requests)
    await device.update()
    await asyncio.sleep(0.1)
    assert len(device.requests) == seen


async def test_non_queue_client_is_always_awake(server: LwM2MServer, device: AiocoapDevice,
                                                clock: FakeClock) -> None:
    await device.register(uri(server))
    clock.advance(200)  # well past awake_time, within the 300 s lifetime
    await server.tick()
    assert (await server.read("dev-1", "/3/0/9")).code == Code.CONTENT
