"""UDP amplification and the duplicate-detection cache under a flood of requests whose
replies are errors. Real sockets on loopback, against the LwM2M server's UDP port and the
Bootstrap-Server's: no reply to a NoSec peer may be larger than its request by more than
ERROR_REPLY_SLACK bytes, and the replies kept for duplicates stay within their budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import BootstrapServer, BootstrapServerConfig
from aiolwm2m.coap.amplification import ERROR_REPLY_SLACK
from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import BadRequest
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import DEDUP_BYTES
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

from ..transport.raw_peer import RawPeer

#: Uri-Path segments of bytes that are not UTF-8: each becomes a 9-character "%EF%BF%BD"
#: when a path is printed, the worst case for an echo.
JUNK = b"\xff" * 250


def attack(code: int, path: Sequence[bytes], query: Sequence[bytes] = (), mid: int = 1,
           payload: bytes = b"") -> bytes:
    msg = Message(MessageType.CON, code, mid, b"\x01\x02\x03\x04", payload=payload)
    for segment in path:
        msg.add_option(11, segment)
    for item in query:
        msg.add_option(15, item)
    return encode_udp(msg)


async def exchange(peer: RawPeer, port: int, data: bytes) -> bytes:
    peer.send(data, ("127.0.0.1", port))
    reply, _ = await asyncio.wait_for(peer.queue.get(), 5)
    return reply


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bootstrap(tmp_path: Path) -> AsyncIterator[BootstrapServer]:
    bs = BootstrapServer(BootstrapServerConfig(host="127.0.0.1", port=0, store="memory",
                                               data_dir=tmp_path))
    await bs.start()
    yield bs
    await bs.stop()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    p = await RawPeer.open("127.0.0.1")
    yield p
    p.close()


REQUESTS = {
    # Site's 4.04 for an unknown path (once 9x the request, now a fixed text).
    "unknown path": (Code.GET, [JUNK] * 25),
    # The registration interface's 4.04 for /rd/{junk}/{junk}, which quotes the path: the
    # endpoint's guard cuts it.
    "unknown registration": (Code.POST, [b"rd"] + [JUNK] * 25),
}


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_error_replies_are_no_larger_than_requests(server: LwM2MServer, peer: RawPeer,
                                                         name: str) -> None:
    code, path = REQUESTS[name]
    data = attack(code, path)
    reply = await exchange(peer, server.port, data)
    assert len(reply) <= len(data) + ERROR_REPLY_SLACK, (len(reply), len(data))
    assert decode_udp(reply).code == Code.NOT_FOUND


async def test_the_bootstrap_port_is_no_amplifier(bootstrap: BootstrapServer,
                                                  peer: RawPeer) -> None:
    port = bootstrap.port
    cases = [(Code.POST, [b"bs"], [b"ep=" + JUNK] * 20),
             (Code.POST, [JUNK] * 25, []),
             (Code.GET, [b"bs"] + [JUNK] * 20, [])]
    for mid, (code, path, query) in enumerate(cases, 1):
        data = attack(code, path, query, mid=mid)
        reply = await exchange(peer, port, data)
        assert len(reply) <= len(data) + ERROR_REPLY_SLACK, (len(reply), len(data))
        assert decode_udp(reply).code >= Code.BAD_REQUEST


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Careless(Resource):
    """A handler whose diagnostic quotes the request body, as handlers sometimes do."""

    def render_post(self, request: Message) -> RenderResult:
        raise BadRequest(f"cannot use {request.payload!r}")


@pytest.fixture
async def careless() -> AsyncIterator[UdpEndpoint]:
    site = Site()
    site.add("careless", Careless())
    ep = await UdpEndpoint.create("127.0.0.1", 0, site=site)
    yield ep
    await ep.close()


async def test_duplicate_cache_stays_within_its_byte_budget(careless: UdpEndpoint,
                                                            peer: RawPeer) -> None:
    """11,000 requests drawing 4.00 replies as large as the guard allows (2 KB each):
    22 MB of replies, more than the duplicate cache may keep."""
    dedup = careless.layer._dedup
    before = _rss()
    count, batch = 11_000, 20  # 20 replies of 2 KB fit the peer's receive buffer
    body = b"\xff" * 2000
    reply_bytes = 0
    for start in range(0, count, batch):
        for mid in range(start, start + batch):
            peer.send(attack(Code.POST, [b"careless"], mid=mid, payload=body),
                      ("127.0.0.1", careless.port))
        for _ in range(batch):
            reply, _ = await asyncio.wait_for(peer.queue.get(), 10)
            reply_bytes += len(reply)
    assert reply_bytes > DEDUP_BYTES
    # The replies the cache actually holds, and its own count of them.
    held = sum(len(v) for generation in (dedup._young, dedup._old)
               for v in generation.values() if v)
    assert held <= DEDUP_BYTES, held
    assert dedup.byte_count == held
    # Coarse: the replies kept for duplicates once took a server up by 600 MB.
    assert _rss() - before < 120 << 20
    # Duplicates of the newest requests are still answered from the cache.
    peer.send(attack(Code.POST, [b"careless"], mid=count - 1, payload=body),
              ("127.0.0.1", careless.port))
    again, _ = await asyncio.wait_for(peer.queue.get(), 5)
    assert decode_udp(again).code == Code.BAD_REQUEST
    assert careless.layer.stats.duplicates == 1
