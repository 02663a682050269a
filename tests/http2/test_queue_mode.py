"""Queue mode over HTTP/2 with our client: asleep, it closes its downlink stream (the
server queues what it has for it); awake again, it sends an Update, reopens the stream,
and the queue flows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.client.events import Sleeping as ClientSleeping
from aiolwm2m.lwm2m.operations import ReadRequest
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Awake, QueuedRequestFinished, Sleeping
from aiolwm2m.store.records import DONE, QueuedRequest


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory"))
    await srv.start()
    yield srv
    await srv.stop()


async def test_sleeping_client_gets_its_queue_on_waking(server: LwM2MServer) -> None:
    events = server.events.stream()
    client = LwM2MClient(ClientConfig.development(
        "q-dev", f"http2://127.0.0.1:{server.port_of('http2')}", host="127.0.0.1",
        queue_mode=True, awake_time=0.5))
    client_events = client.events.stream()
    await client.start()
    try:
        await client.wait_registered(10)
        reg = server.registrations["q-dev"]
        assert reg.queue_mode and reg.binding == "H"
        assert isinstance(await events.until(Awake), Awake)  # its downlink opened
        assert isinstance(await client_events.until(ClientSleeping, timeout=5),
                          ClientSleeping)
        assert isinstance(await events.until(Sleeping), Sleeping)  # ... and closed
        queued = await server.submit("q-dev", ReadRequest(LwM2MPath(3, 0, 0)))
        assert isinstance(queued, QueuedRequest)
        await client.wake()
        assert isinstance(await events.until(Awake), Awake)
        done = await events.until(QueuedRequestFinished)
        assert isinstance(done, QueuedRequestFinished)
        assert done.request.id == queued.id and done.request.state == DONE
    finally:
        await client.stop()
