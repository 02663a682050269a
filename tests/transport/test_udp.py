"""The asyncio UDP endpoint over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import BadRequest, EndpointClosed, RequestTimeout
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.transport.site import HeldResponse, RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

from .raw_peer import RawPeer

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST


class Echo(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.body = b""

    def render_get(self, request: Message) -> RenderResult:
        self.calls += 1
        return request.response(Code.CONTENT, b"echo:" + ",".join(request.uri_query).encode(), 0)

    def render_put(self, request: Message) -> RenderResult:
        self.body = request.payload
        return request.response(Code.CHANGED)


class Big(Resource):
    body = bytes(i % 251 for i in range(20000))

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, self.body, 42)


class Slow(Resource):
    async def render_get(self, request: Message) -> Message:
        await asyncio.sleep(0.4)
        return request.response(Code.CONTENT, b"done")


class Failing(Resource):
    def render_get(self, request: Message) -> RenderResult:
        raise RuntimeError("boom")

    def render_post(self, request: Message) -> RenderResult:
        raise BadRequest("payload must be a number")


class Counter(Resource):
    observable = True

    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, str(self.value).encode(), 0)


@pytest.fixture
async def server() -> AsyncIterator[UdpEndpoint]:
    site = Site()
    site.add("echo", Echo())
    site.add("big", Big())
    site.add("slow", Slow())
    site.add("fail", Failing())
    site.add("counter", Counter())
    params = TransmissionParameters(ack_timeout=0.2, max_retransmit=2, empty_ack_delay=0.1)
    ep = await UdpEndpoint.create("::", 0, site=site, params=params)
    yield ep
    await ep.close()


@pytest.fixture
async def client() -> AsyncIterator[UdpEndpoint]:
    ep = await UdpEndpoint.create("::", 0)
    yield ep
    await ep.close()


def resource(ep: UdpEndpoint, path: str) -> Resource:
    msg = Message.request(Code.GET, path)
    return ep.site.find(msg)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_get_over_ipv4_and_ipv6(server: UdpEndpoint, client: UdpEndpoint,
                                      host: str) -> None:
    resp = await client.request(Message.request(Code.GET, "/echo", query=["a=1"]),
                                (host, server.port))
    assert resp.code == Code.CONTENT and resp.payload == b"echo:a=1"


async def test_ipv4_only_endpoints(server: UdpEndpoint) -> None:
    async with await UdpEndpoint.create("127.0.0.1", 0) as v4:
        resp = await v4.request(Message.request(Code.GET, "/echo"), ("127.0.0.1", server.port))
        assert resp.payload == b"echo:"


async def test_not_found_and_method_not_allowed(server: UdpEndpoint,
                                                client: UdpEndpoint) -> None:
    resp = await client.request(Message.request(Code.GET, "/nope"), ("::1", server.port))
    # A fixed diagnostic: echoing the path would make replies as large as requests.
    assert resp.code == Code.NOT_FOUND and resp.payload == b"no such resource"
    resp = await client.request(Message.request(Code.DELETE, "/echo"), ("::1", server.port))
    assert resp.code == Code.METHOD_NOT_ALLOWED


async def test_handler_failures_do_not_log_a_traceback_each(
        server: UdpEndpoint, client: UdpEndpoint, caplog: pytest.LogCaptureFixture) -> None:
    # A fault on every request (a store gone away) must not turn into a log flood.
    with caplog.at_level(logging.ERROR, "aiolwm2m.transport.dispatch"):
        for _ in range(40):
            resp = await client.request(Message.request(Code.GET, "/fail"),
                                        ("::1", server.port))
            assert resp.code == Code.INTERNAL_SERVER_ERROR
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) <= 5  # a burst per interval (shared by the whole process)


async def test_handler_errors_map_to_codes_and_server_keeps_serving(
        server: UdpEndpoint, client: UdpEndpoint) -> None:
    resp = await client.request(Message.request(Code.GET, "/fail"), ("::1", server.port))
    assert resp.code == Code.INTERNAL_SERVER_ERROR
    resp = await client.request(Message.request(Code.POST, "/fail"), ("::1", server.port))
    assert resp.code == Code.BAD_REQUEST and resp.payload == b"payload must be a number"
    resp = await client.request(Message.request(Code.GET, "/echo"), ("::1", server.port))
    assert resp.code == Code.CONTENT


async def test_blockwise_both_directions(server: UdpEndpoint, client: UdpEndpoint) -> None:
    resp = await client.request(Message.request(Code.GET, "/big"), ("::1", server.port))
    assert resp.payload == Big.body and resp.content_format == 42
    body = bytes(range(256)) * 40
    resp = await client.request(Message.request(Code.PUT, "/echo", payload=body),
                                ("::1", server.port), block_szx=2)
    assert resp.code == Code.CHANGED and resp.block1 is not None and not resp.block1.more
    echo = resource(server, "/echo")
    assert isinstance(echo, Echo) and echo.body == body


async def test_slow_handler_gets_empty_ack_then_separate_response(server: UdpEndpoint) -> None:
    peer = await RawPeer.open("::1")
    try:
        req = Message.request(Code.GET, "/slow", token=b"ab")
        req.mid = 4242
        peer.send(req, ("::1", server.port))
        ack = await peer.recv()
        assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 4242)
        resp = await peer.recv()
        assert resp.mtype == CON and resp.token == b"ab" and resp.payload == b"done"
        peer.send(Message(ACK, 0, resp.mid), ("::1", server.port))
        assert await peer.nothing(0.5)  # acknowledged: no retransmission
    finally:
        peer.close()


async def test_our_client_handles_separate_responses(server: UdpEndpoint,
                                                     client: UdpEndpoint) -> None:
    resp = await client.request(Message.request(Code.GET, "/slow"), ("::1", server.port))
    assert resp.payload == b"done"


async def test_duplicate_request_processed_once(server: UdpEndpoint) -> None:
    peer = await RawPeer.open("127.0.0.1")
    echo = resource(server, "/echo")
    assert isinstance(echo, Echo)
    try:
        req = Message.request(Code.GET, "/echo", token=b"t1")
        req.mid = 99
        for _ in range(3):
            peer.send(req, ("127.0.0.1", server.port))
        replies = [await peer.recv() for _ in range(3)]
        assert all(r == replies[0] for r in replies)
        assert echo.calls == 1
    finally:
        peer.close()


BAD_DATAGRAMS = [
    (b"\x40\x01", None),  # truncated header: dropped
    (bytes.fromhex("4901abcd") + bytes(9), RST),  # TKL 9
    (bytes.fromhex("40011234bb") + b"abc", RST),  # option runs past the end
    (bytes.fromhex("40011235ff"), RST),  # payload marker, no payload
    (bytes.fromhex("50011236ff"), None),  # the same in a NON: dropped
    (bytes.fromhex("80011237"), None),  # version 2: dropped
    (bytes.fromhex("4001123899") + b"123456789", Code.BAD_OPTION),  # critical option 9
]


async def test_bad_input_gets_what_rfc7252_prescribes(server: UdpEndpoint) -> None:
    peer = await RawPeer.open("127.0.0.1")
    try:
        for data, expected in BAD_DATAGRAMS:
            peer.send(data, ("127.0.0.1", server.port))
            if expected is None:
                assert await peer.nothing(0.2), data.hex()
            elif expected == RST:
                reply = await peer.recv()
                assert reply.mtype == RST and reply.mid == int.from_bytes(data[2:4], "big")
            else:
                reply = await peer.recv()
                assert reply.code == expected and reply.payload, data.hex()
        ok = Message.request(Code.GET, "/echo", token=b"z")
        ok.mid = 1
        peer.send(ok, ("127.0.0.1", server.port))
        assert (await peer.recv()).code == Code.CONTENT
    finally:
        peer.close()


async def test_observe_notify_and_active_cancel(server: UdpEndpoint,
                                                client: UdpEndpoint) -> None:
    counter = resource(server, "/counter")
    assert isinstance(counter, Counter)
    sub = await client.observe(Message.request(Code.GET, "/counter"), ("::1", server.port))
    first = await sub.first
    assert first.payload == b"0" and first.observe is not None
    seen = []
    for i in range(1, 4):
        counter.value = i
        counter.notify()
        note = await asyncio.wait_for(sub.__anext__(), 2)
        seen.append(note.payload)
    assert seen == [b"1", b"2", b"3"]
    assert len(server.dispatcher.observers) == 1
    await sub.cancel()
    assert len(server.dispatcher.observers) == 0


async def test_observe_passive_cancel_by_reset(server: UdpEndpoint,
                                               client: UdpEndpoint) -> None:
    counter = resource(server, "/counter")
    sub = await client.observe(Message.request(Code.GET, "/counter"), ("::1", server.port))
    await sub.first
    await sub.cancel(active=False)
    assert len(server.dispatcher.observers) == 1
    counter.notify()  # the client answers this notification with RST
    for _ in range(50):
        if len(server.dispatcher.observers) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(server.dispatcher.observers) == 0


async def test_dead_observer_is_dropped_after_unacknowledged_con(server: UdpEndpoint) -> None:
    peer = await RawPeer.open("::1")
    counter = resource(server, "/counter")
    try:
        req = Message.request(Code.GET, "/counter", observe=0, token=b"ob")
        req.mid = 7
        peer.send(req, ("::1", server.port))
        first = await peer.recv()
        assert first.observe is not None
        obs = server.dispatcher.observers.get(peer_address(peer), b"ob")
        assert obs is not None
        server.dispatcher.notify_observation(obs, confirmable=True)
        # never acknowledge: with ack_timeout 0.2 and 2 retransmissions it is dropped in ~2 s
        for _ in range(60):
            if len(server.dispatcher.observers) == 0:
                break
            await asyncio.sleep(0.05)
        assert len(server.dispatcher.observers) == 0
        del counter
    finally:
        peer.close()


def peer_address(peer: RawPeer) -> tuple[object, ...]:
    host, port = peer.address[:2]
    return (host, port, 0, 0)


async def test_request_to_silent_peer_times_out() -> None:
    silent = await RawPeer.open("127.0.0.1")
    params = TransmissionParameters(ack_timeout=0.05, max_retransmit=2)
    async with await UdpEndpoint.create("127.0.0.1", 0, params=params) as ep:
        with pytest.raises(RequestTimeout):
            await ep.request(Message.request(Code.GET, "/x"), silent.address)
    assert silent.queue.qsize() == 3  # the request and two retransmissions
    silent.close()


async def test_close_fails_pending_requests() -> None:
    silent = await RawPeer.open("127.0.0.1")
    ep = await UdpEndpoint.create("127.0.0.1", 0)
    task = asyncio.create_task(ep.request(Message.request(Code.GET, "/x"), silent.address))
    await asyncio.sleep(0.05)
    await ep.close()
    with pytest.raises(EndpointClosed):
        await task
    silent.close()


async def test_ping(server: UdpEndpoint, client: UdpEndpoint) -> None:
    rtt = await client.ping(("::1", server.port))
    assert 0 <= rtt < 1


async def test_well_known_core_filtering(server: UdpEndpoint, client: UdpEndpoint) -> None:
    resp = await client.request(Message.request(Code.GET, "/.well-known/core"),
                                ("::1", server.port))
    assert resp.content_format == 40
    assert b"</counter>;obs" in resp.payload and b"</echo>" in resp.payload
    resp = await client.request(Message.request(Code.GET, "/.well-known/core",
                                                query=["href=/e*"]), ("::1", server.port))
    assert resp.payload == b"</echo>"


class Brief(Resource):
    """Answers after a short wait, well within the empty-ACK delay."""

    def __init__(self, eager: bool) -> None:
        super().__init__()
        self.eager = eager

    async def render_get(self, request: Message) -> Message:
        await asyncio.sleep(0.03)
        return request.response(Code.CONTENT, b"ok")


@pytest.mark.parametrize("eager", [True, False])
async def test_only_requests_still_unanswered_get_an_empty_ack(eager: bool) -> None:
    # Waves of requests answered in 30 ms for longer than the 0.5 s empty-ACK delay: each
    # wave's request objects are freed and the next wave's may reuse their memory, so
    # bookkeeping keyed by object identity would acknowledge new requests early.
    site = Site()
    site.add("brief", Brief(eager))
    ep = await UdpEndpoint.create("127.0.0.1", 0, site=site,
                                  params=TransmissionParameters(empty_ack_delay=0.5))
    peer = await RawPeer.open("127.0.0.1")
    try:
        mid = 0
        deadline = asyncio.get_running_loop().time() + 1.5
        while asyncio.get_running_loop().time() < deadline:
            for _ in range(20):
                mid += 1
                req = Message.request(Code.GET, "/brief", token=mid.to_bytes(2, "big"))
                req.mid = mid
                peer.send(req, ("127.0.0.1", ep.port))
            replies = [await peer.recv() for _ in range(20)]
            assert [(r.mtype, r.code) for r in replies] == [(ACK, Code.CONTENT)] * 20
    finally:
        peer.close()
        await ep.close()


class Durable(Resource):
    """Replies held until a future the test completes (one for all requests until then)."""

    def __init__(self) -> None:
        super().__init__()
        self.until: asyncio.Future[None] | None = None
        self.announced = 0

    def render_put(self, request: Message) -> RenderResult:
        if self.until is None or self.until.done():
            self.until = asyncio.get_running_loop().create_future()
        return HeldResponse(request.response(Code.CHANGED, b"kept"), self.until,
                            self._announce)

    def _announce(self) -> None:
        self.announced += 1


async def test_held_reply_leaves_after_its_future_with_an_empty_ack_if_late() -> None:
    site = Site()
    durable = Durable()
    site.add("durable", durable)
    ep = await UdpEndpoint.create("127.0.0.1", 0, site=site,
                                  params=TransmissionParameters(empty_ack_delay=0.1))
    peer = await RawPeer.open("127.0.0.1")
    try:
        req = Message.request(Code.PUT, "/durable", token=b"h1")
        req.mid = 7
        peer.send(req, ("127.0.0.1", ep.port))
        ack = await peer.recv()
        assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 7)  # still held: empty ACK
        assert durable.until is not None and durable.announced == 0
        durable.until.set_result(None)
        resp = await peer.recv()
        assert (resp.mtype, resp.code, resp.token, resp.payload) == (
            CON, Code.CHANGED, b"h1", b"kept")
        assert durable.announced == 1
        peer.send(Message(ACK, 0, resp.mid), ("127.0.0.1", ep.port))

        req = Message.request(Code.PUT, "/durable", token=b"h2")
        req.mid = 8
        peer.send(req, ("127.0.0.1", ep.port))
        await asyncio.sleep(0.02)
        assert durable.until is not None
        durable.until.set_exception(OSError("disk full"))
        resp = await peer.recv()
        assert (resp.mtype, resp.code, resp.mid) == (ACK, Code.INTERNAL_SERVER_ERROR, 8)
        assert durable.announced == 1
    finally:
        peer.close()
        await ep.close()


async def test_a_request_joining_a_late_group_gets_its_own_empty_ack() -> None:
    site = Site()
    durable = Durable()
    site.add("durable", durable)
    ep = await UdpEndpoint.create("127.0.0.1", 0, site=site,
                                  params=TransmissionParameters(empty_ack_delay=0.2))
    peer = await RawPeer.open("127.0.0.1")
    loop = asyncio.get_running_loop()
    try:
        first = Message.request(Code.PUT, "/durable", token=b"g1")
        first.mid = 21
        peer.send(first, ("127.0.0.1", ep.port))
        assert (await peer.recv()).mid == 21  # the group's empty ACK, after 0.2 s
        second = Message.request(Code.PUT, "/durable", token=b"g2")
        second.mid = 22
        sent_at = loop.time()
        peer.send(second, ("127.0.0.1", ep.port))
        ack = await peer.recv()
        assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 22)
        assert loop.time() - sent_at >= 0.15  # its own delay, not the group's
        assert durable.until is not None
        durable.until.set_result(None)
        replies = sorted([await peer.recv(), await peer.recv()], key=lambda m: m.token)
        assert [(r.mtype, r.code, r.token) for r in replies] == [
            (CON, Code.CHANGED, b"g1"), (CON, Code.CHANGED, b"g2")]
    finally:
        peer.close()
        await ep.close()
