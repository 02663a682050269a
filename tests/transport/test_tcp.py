"""CoAP over TCP end to end: our client and our server over real loopback connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource, TextResource
from aiolwm2m.coap.block import BERT_SZX
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, RequestTimeout
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.signals import Capabilities
from aiolwm2m.coap.tcp_connection import ConnectionLost, TcpParameters
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_events import (
    Connected,
    CsmReceived,
    Disconnected,
    ReleaseReceived,
    TcpConnectionEvent,
)
from tests.transport.request_counter import count_requests

BODY = bytes((i * 7 + 3) & 0xFF for i in range(100_000))


class Recorder(StoreResource):
    """A store that remembers the Block1 option of the (reassembled) request it got."""

    def __init__(self) -> None:
        super().__init__()
        self.block1: Any = None

    def render_put(self, request: Message) -> RenderResult:
        self.block1 = request.block1
        return super().render_put(request)


class Slow(Resource):
    async def render_get(self, request: Message) -> Message:
        await asyncio.sleep(0.3)
        return request.response(Code.CONTENT, b"slow")


class Failing(Resource):
    def render_get(self, request: Message) -> RenderResult:
        raise BadRequest("no way")


def make_site() -> Site:
    site = Site()
    site.add("hello", TextResource("hello tcp"))
    site.add("large", StoreResource(BODY, 42))
    site.add("store", Recorder())
    site.add("counter", CounterResource())
    site.add("slow", Slow())
    site.add("failing", Failing())
    return site


@pytest.fixture
async def server() -> AsyncIterator[TcpEndpoint]:
    ep = await TcpEndpoint.create("127.0.0.1", 0, site=make_site())
    yield ep
    await ep.close()


@pytest.fixture
async def client() -> AsyncIterator[TcpEndpoint]:
    ep = await TcpEndpoint.create(listen=False)
    yield ep
    await ep.close()


def addr(ep: TcpEndpoint) -> tuple[str, int]:
    return ("127.0.0.1", ep.port)




async def test_requests_share_one_connection(server: TcpEndpoint, client: TcpEndpoint) -> None:
    r = await client.request(Message.request(Code.GET, "/hello"), addr(server))
    assert r.code == Code.CONTENT and r.payload == b"hello tcp"
    results = await asyncio.gather(*(client.request(Message.request(Code.GET, "/hello"),
                                                    addr(server)) for _ in range(50)))
    assert all(x.payload == b"hello tcp" for x in results)
    r = await client.request(Message.request(Code.GET, "/nothing"), addr(server))
    assert r.code == Code.NOT_FOUND
    r = await client.request(Message.request(Code.GET, "/failing"), addr(server))
    assert r.code == Code.BAD_REQUEST and r.payload == b"no way"
    r = await client.request(Message.request(Code.GET, "/slow"), addr(server))
    assert r.payload == b"slow"
    assert len(server.connections()) == 1 and len(client.connections()) == 1


async def test_bert_both_ways(server: TcpEndpoint) -> None:
    client = await TcpEndpoint.create(listen=False, params=TcpParameters(max_message_size=16384))
    try:
        seen = count_requests(server)
        r = await client.request(Message.request(Code.GET, "/large"), addr(server))
        assert r.payload == BODY and r.block2 is None
        # 15 KiB BERT blocks: 7 requests, not 98 of 1 KiB.
        assert len(seen) == 7
        assert all(m.block2 is not None and m.block2.szx == BERT_SZX for m in seen[1:])
        seen.clear()
        r = await client.request(Message.request(Code.PUT, "/store", payload=BODY),
                                 addr(server))
        assert r.code == Code.CHANGED
        store = server.site.find(Message.request(Code.GET, "/store"))
        assert isinstance(store, Recorder) and store.data == BODY
        assert store.block1 is not None and store.block1.szx == BERT_SZX
        assert len(seen) == 2  # the server accepts 64 KiB messages: two BERT blocks
    finally:
        await client.close()


async def test_whole_messages_when_they_fit(server: TcpEndpoint, client: TcpEndpoint) -> None:
    seen = count_requests(server)
    body = BODY[:40_000]
    r = await client.request(Message.request(Code.PUT, "/store", payload=body), addr(server))
    assert r.code == Code.CHANGED and len(seen) == 1 and seen[0].block1 is None
    r = await client.request(Message.request(Code.GET, "/store"), addr(server))
    assert r.payload == body and r.block2 is None and len(seen) == 2


async def test_plain_blocks_without_bert() -> None:
    server = await TcpEndpoint.create("127.0.0.1", 0, site=make_site(),
                                      params=TcpParameters(block_wise=False))
    client = await TcpEndpoint.create(listen=False, params=TcpParameters(max_message_size=4096))
    try:
        seen = count_requests(server)
        r = await client.request(Message.request(Code.GET, "/large"), addr(server))
        assert r.payload == BODY and len(seen) == 98  # 1024-byte blocks
        seen.clear()
        r = await client.request(Message.request(Code.PUT, "/store", payload=BODY[:70_000]),
                                 addr(server), block_szx=5)
        assert r.code == Code.CHANGED
        assert len(seen) == 137 and {m.block1.szx for m in seen if m.block1} == {5}
    finally:
        await client.close()
        await server.close()


async def test_observe_and_cancel(server: TcpEndpoint, client: TcpEndpoint) -> None:
    counter = server.site.find(Message.request(Code.GET, "/counter"))
    assert isinstance(counter, CounterResource)
    sub = await client.observe(Message.request(Code.GET, "/counter"), addr(server))
    assert sub.first.result().payload == b"0"
    assert len(server.dispatcher.observers) == 1
    for i in range(1, 4):
        counter.value = i
        counter.notify()
        note = await asyncio.wait_for(sub.__anext__(), 2)
        assert note.payload == str(i).encode()
    await sub.cancel()
    assert len(server.dispatcher.observers) == 0
    counter.value = 99
    counter.notify()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(sub.__anext__(), 1)


async def test_large_notifications_come_whole_or_in_blocks(server: TcpEndpoint) -> None:
    store = server.site.find(Message.request(Code.GET, "/store"))
    assert isinstance(store, StoreResource)
    store.data = BODY[:30_000]
    client = await TcpEndpoint.create(listen=False, params=TcpParameters(max_message_size=8192))
    try:
        sub = await client.observe(Message.request(Code.GET, "/store"), addr(server))
        assert sub.first.result().payload == BODY[:30_000]
        store.data = BODY[:50_000]
        store.notify()
        note = await asyncio.wait_for(sub.__anext__(), 3)
        assert note.payload == BODY[:50_000]
        await sub.cancel()
    finally:
        await client.close()


async def test_connection_loss_fails_requests_and_ends_observations(
        server: TcpEndpoint, client: TcpEndpoint) -> None:
    sub = await client.observe(Message.request(Code.GET, "/counter"), addr(server))
    pending = asyncio.create_task(client.request(Message.request(Code.GET, "/slow"),
                                                 addr(server)))
    await asyncio.sleep(0.05)
    [peer] = server.connections()
    server.abort(peer, "test over")
    with pytest.raises(ConnectionLost, match="test over"):
        await pending
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(sub.__anext__(), 2)
    await asyncio.sleep(0.05)
    assert len(server.dispatcher.observers) == 0 and server.connections() == []
    # The next request dials a new connection.
    r = await client.request(Message.request(Code.GET, "/hello"), addr(server))
    assert r.payload == b"hello tcp" and len(server.connections()) == 1


async def test_server_side_close_fails_pending_requests(client: TcpEndpoint) -> None:
    server = await TcpEndpoint.create("127.0.0.1", 0, site=make_site())
    pending = asyncio.create_task(client.request(Message.request(Code.GET, "/slow"),
                                                 addr(server)))
    await asyncio.sleep(0.05)
    await server.close()
    with pytest.raises(ConnectionLost):
        await pending


async def test_server_requests_over_the_clients_connection() -> None:
    """The LwM2M pattern: the device dials, the server sends requests back over that
    connection and the device serves them from its own site."""
    server = await TcpEndpoint.create("127.0.0.1", 0, site=make_site(), dial=False)
    device_site = Site()
    device_site.add("3/0/0", TextResource("ACME"))
    device = await TcpEndpoint.create(listen=False, site=device_site)
    try:
        await device.request(Message.request(Code.GET, "/hello"), addr(server))
        [peer] = server.connections()
        r = await server.request(Message.request(Code.GET, "/3/0/0"), peer)
        assert r.payload == b"ACME"
        # A plain (host, port) tuple works as well, as stored in a registration.
        r = await server.request(Message.request(Code.GET, "/3/0/0"), (peer[0], peer[1]))
        assert r.payload == b"ACME"
        with pytest.raises(ConnectionLost, match="no connection"):
            await server.request(Message.request(Code.GET, "/3/0/0"), ("127.0.0.1", 1))
        assert server.identity_of(peer) is None
        caps = server.peer_capabilities(peer)
        assert caps == Capabilities(65536, True)
    finally:
        await device.close()
        await server.close()


async def test_connection_events(server: TcpEndpoint, client: TcpEndpoint) -> None:
    server_events: list[TcpConnectionEvent] = []
    client_events: list[TcpConnectionEvent] = []
    unsubscribe = server.events.subscribe(server_events.append)
    client.events.subscribe(client_events.append)
    await client.request(Message.request(Code.GET, "/hello"), addr(server))
    [peer] = server.connections()
    server.release(peer, "maintenance", hold_off=60)
    await asyncio.sleep(0.1)
    kinds = [type(e) for e in server_events]
    assert kinds == [Connected, CsmReceived, Disconnected]
    ckinds = [type(e) for e in client_events]
    assert ckinds == [Connected, CsmReceived, ReleaseReceived, Disconnected]
    rel = client_events[2]
    assert isinstance(rel, ReleaseReceived) and rel.release.hold_off == 60
    first = client_events[0]
    assert isinstance(first, Connected) and first.outgoing and first.scheme == "coap+tcp"
    # Hold-Off: the client does not reconnect for now.
    with pytest.raises(ConnectionLost, match="Hold-Off"):
        await client.request(Message.request(Code.GET, "/hello"), addr(server))
    unsubscribe()
    assert not server.events


async def test_ping(server: TcpEndpoint, client: TcpEndpoint) -> None:
    rtt = await client.ping(addr(server), timeout=2)
    assert 0 <= rtt < 1


async def test_cancelled_request_is_forgotten(server: TcpEndpoint, client: TcpEndpoint
                                              ) -> None:
    task = asyncio.create_task(client.request(Message.request(Code.GET, "/slow"),
                                              addr(server)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [link_peer] = client.connections()
    assert link_peer.link is not None and link_peer.link.conn is not None
    assert link_peer.link.conn.pending_exchanges == 0
    await asyncio.sleep(0.4)  # the late response arrives and is dropped
    assert link_peer.link.conn.unmatched == 1


async def test_request_timeout(server: TcpEndpoint, client: TcpEndpoint) -> None:
    with pytest.raises(RequestTimeout):
        await client.request(Message.request(Code.GET, "/slow"), addr(server), timeout=0.1)
    # The connection is still fine.
    r = await client.request(Message.request(Code.GET, "/hello"), addr(server))
    assert r.code == Code.CONTENT


async def test_idle_timeout_and_keepalive() -> None:
    server = await TcpEndpoint.create("127.0.0.1", 0, site=make_site(),
                                      params=TcpParameters(idle_timeout=0.3))
    quiet = await TcpEndpoint.create(listen=False)
    alive = await TcpEndpoint.create(listen=False,
                                     params=TcpParameters(keepalive_interval=0.1))
    try:
        events: list[TcpConnectionEvent] = []
        quiet.events.subscribe(events.append)
        await quiet.request(Message.request(Code.GET, "/hello"), addr(server))
        await alive.request(Message.request(Code.GET, "/hello"), addr(server))
        await asyncio.sleep(0.8)
        assert quiet.connections() == [] and len(alive.connections()) == 1
        assert isinstance(events[-1], Disconnected)
        assert any(isinstance(e, ReleaseReceived) and "idle" in e.release.diagnostic
                   for e in events)
        assert len(server.connections()) == 1
    finally:
        await quiet.close()
        await alive.close()
        await server.close()


async def test_observe_with_forget_and_resume(server: TcpEndpoint, client: TcpEndpoint
                                              ) -> None:
    class Sink:
        def __init__(self) -> None:
            self.got: list[Message] = []
            self.errors: list[BaseException] = []

        def on_response(self, msg: Message) -> None:
            self.got.append(msg)

        def on_error(self, error: BaseException) -> None:
            self.errors.append(error)

    counter = server.site.find(Message.request(Code.GET, "/counter"))
    assert isinstance(counter, CounterResource)
    sink = Sink()
    req = Message.request(Code.GET, "/counter", observe=0, token=client.new_token())
    ex = await client.observe_with(req, addr(server), sink)
    await asyncio.sleep(0.05)
    counter.value = 5
    counter.notify()
    await asyncio.sleep(0.05)
    assert [m.payload for m in sink.got] == [b"0", b"5"]
    # Forget, then resume on the same connection: notifications flow to the new sink.
    client.forget(ex)
    sink2 = Sink()
    await client.resume_observation(req.copy(), addr(server), sink2)
    counter.value = 6
    counter.notify()
    await asyncio.sleep(0.05)
    assert [m.payload for m in sink2.got] == [b"6"] and len(sink.got) == 2
    # Without a connection there is nothing to resume.
    sink3 = Sink()
    await client.resume_observation(req.copy(), ("127.0.0.1", 9), sink3)
    await asyncio.sleep(0)
    assert isinstance(sink3.errors[0], ConnectionLost)
