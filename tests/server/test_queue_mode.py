"""Queue mode with an injected clock: awake/sleeping, the persisted queue, TTLs, and
at-most-once requests (their SIGKILL test is in test_restart.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.lwm2m.operations import ExecuteRequest, ReadRequest, WriteRequest
from aiolwm2m.server import DeviceSleeping, LwM2MServer, ServerConfig
from aiolwm2m.server.events import Awake, EventStream, QueuedRequestFinished, Sleeping
from aiolwm2m.server.queue_mode import QueueExpired
from aiolwm2m.store.records import DONE, EXPIRED, FAILED, IN_FLIGHT, PENDING, QueuedRequest
from aiolwm2m.web.app import create_app

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


class GatedDevice(AiocoapDevice):
    """Answers an Execute only once the test opens the gate."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.gate = asyncio.Event()

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        response = await super().render(request)
        if request.code == C.POST and len(request.opt.uri_path) == 3:
            await self.gate.wait()
        return response


@pytest.fixture
async def gated() -> AsyncIterator[GatedDevice]:
    dev = GatedDevice("dev-1")
    await dev.start()
    yield dev
    dev.gate.set()
    await dev.stop()


async def asleep(server: LwM2MServer, device: AiocoapDevice, clock: FakeClock) -> None:
    assert (await device.register(uri(server), queue=True)).code == C.CREATED
    clock.advance(31)
    await server.tick()
    assert not server.queue.is_awake(server.registrations[device.endpoint])


async def test_at_most_once_request_is_in_flight_while_sent(
        server: LwM2MServer, gated: GatedDevice, clock: FakeClock) -> None:
    await asleep(server, gated, clock)
    waiting = asyncio.create_task(server.execute("dev-1", "/3/0/4", at_most_once=True))
    await wait_for(lambda: server.queue.depth == 1)
    (queued,) = await server.stores.queue.pending("dev-1")
    assert queued.at_most_once
    assert (await gated.update()).code == C.CHANGED
    await wait_for(lambda: gated.state.executed == [("/3/0/4", "")])
    # Sent, not answered yet: marked in flight, and that mark is in the database.
    record = await server.queued_request(queued.id)
    assert record is not None and record.state == IN_FLIGHT and record.started_at == clock.now
    with contextlib.closing(sqlite3.connect(server.config.database)) as conn:
        row = conn.execute("SELECT state FROM queued_requests WHERE id=?", (queued.id,))
        assert row.fetchone() == (IN_FLIGHT,)
    gated.gate.set()
    assert (await asyncio.wait_for(waiting, 5)).code == Code.CHANGED
    record = await server.queued_request(queued.id)
    assert record is not None and record.state == DONE and server.queue.depth == 0


async def test_stopped_mid_flight_at_most_once_is_failed_at_start_and_never_resent(
        tmp_path: Path, gated: GatedDevice, clock: FakeClock) -> None:
    cfg = ServerConfig(host="::1", port=0, data_dir=tmp_path, clock=clock, run_timers=False,
                       awake_time=30.0)
    first = LwM2MServer(cfg)
    await first.start()
    first_port = first.port
    try:
        await asleep(first, gated, clock)
        amo = await first.submit("dev-1", ExecuteRequest(LwM2MPath(3, 0, 4)),
                                 at_most_once=True)
        alo = await first.submit("dev-1", ExecuteRequest(LwM2MPath(3, 0, 5)))
        assert isinstance(amo, QueuedRequest) and isinstance(alo, QueuedRequest)
        assert (await gated.update()).code == C.CHANGED
        await wait_for(lambda: len(gated.state.executed) == 1)
        # The device's empty ACK must arrive first: one that meets a closed port makes
        # aiocoap stop talking to that address.
        await asyncio.sleep(0.5)
    finally:
        await first.stop()  # while the Execute waits for its answer
    # Same data and port: the device finds its registration again.
    second = LwM2MServer(dataclasses.replace(cfg, port=first_port))
    events = second.events.stream()
    await second.start()
    try:
        ev = await asyncio.wait_for(events.next(), 3)
        assert isinstance(ev, QueuedRequestFinished) and ev.request.id == amo.id
        record = await second.queued_request(amo.id)
        assert record is not None and record.state == FAILED
        assert record.result is not None and record.result["outcome"] == "unknown"
        assert second.queue.depth == 1  # the at-least-once one is still queued
        gated.gate.set()
        assert (await gated.update()).code == C.CHANGED
        await wait_for(lambda: len(gated.state.executed) == 2)
        await asyncio.sleep(0.1)
        assert gated.state.executed == [("/3/0/4", ""), ("/3/0/5", "")]
    finally:
        await second.stop()


async def test_rest_queues_at_most_once_and_documents_at_least_once(
        server: LwM2MServer, device: AiocoapDevice, clock: FakeClock) -> None:
    await asleep(server, device, clock)
    app = create_app(server, ["t0ken"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers={"Authorization": "Bearer t0ken"}) as http:
        got = await http.post("/api/clients/dev-1/execute?at_most_once=true",
                              json={"path": "/3/0/4"})
        assert got.status_code == 202
        assert got.json()["at_most_once"] is True and got.json()["state"] == "pending"
        plain = await http.post("/api/clients/dev-1/execute", json={"path": "/3/0/4"})
        assert plain.status_code == 202 and plain.json()["at_most_once"] is False
        rid = got.json()["request_id"]
        assert (await device.update()).code == C.CHANGED
        await wait_for(lambda: len(device.state.executed) == 2)
        await wait_for(lambda: server.queue.depth == 0)
        record = (await http.get(f"/api/requests/{rid}")).json()
        assert record["state"] == "done" and record["at_most_once"] is True
        spec = (await http.get("/openapi.json")).json()
        described = spec["paths"]["/api/requests/{request_id}"]["get"]["description"]
        assert "at least once" in described and "at_most_once" in described
