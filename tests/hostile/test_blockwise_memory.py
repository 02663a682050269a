"""Block1 reassembly under a flood of unauthenticated uploads, through the LwM2M server's
UDP port on loopback: the memory held stays within the transport's budget, unregistered
peers get the smaller per-peer budget, registered devices' uploads in progress survive,
a gateway still registers with a large object list, and BERT is refused over UDP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.block import BlockValue
from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.udp import UdpEndpoint

from ..transport.raw_peer import RawPeer

LINKS = b'</>;rt="oma.lwm2m",</1/0>,</3/0>'
LIMITS = ReassemblyLimits(transport_bytes=1 << 20, peer_bytes=256 << 10,
                          untrusted_peer_bytes=64 << 10)


def big_links(size: int) -> bytes:
    """An object list of about ``size`` bytes (a gateway with many instances)."""
    out = bytearray(LINKS)
    for i in itertools.count():
        if len(out) >= size:
            return bytes(out)
        out += b",</3303/%d>" % i
    raise AssertionError


class Uploader:
    """A raw peer that sends Block1 requests one block at a time."""

    _mids = itertools.count(1)

    def __init__(self, peer: RawPeer, port: int) -> None:
        self.peer = peer
        self.port = port

    @classmethod
    async def open(cls, port: int) -> Uploader:
        return cls(await RawPeer.open("127.0.0.1"), port)

    async def send(self, msg: Message) -> Message:
        msg.mid = next(self._mids) & 0xFFFF
        msg.token = b"up"
        self.peer.send(encode_udp(msg), ("127.0.0.1", self.port))
        data, _ = await asyncio.wait_for(self.peer.queue.get(), 5)
        return decode_udp(data)

    async def block(self, path: str, query: list[str], body: bytes, num: int, more: bool
                    ) -> Message:
        msg = Message.request(Code.POST, path, query=query, content_format=40,
                              payload=body[num * 1024:(num + 1) * 1024])
        msg.block1 = BlockValue(num, more, 6)
        return await self.send(msg)

    async def blocks(self, path: str, query: list[str], body: bytes, first: int, last: int
                     ) -> Message:
        """Blocks ``first``..``last`` (inclusive) of ``body``; the answer to the last."""
        count = -(-len(body) // 1024)
        answer = None
        for num in range(first, last + 1):
            answer = await self.block(path, query, body, num, num < count - 1)
            if answer.code != Code.CONTINUE:
                break
        assert answer is not None
        return answer

    def close(self) -> None:
        self.peer.close()


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False, reassembly=LIMITS))
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_flood_of_uploads_leaves_registered_devices_theirs(server: LwM2MServer
                                                                   ) -> None:
    block1 = server.udp.dispatcher.block1
    port = server.port
    # Three registered devices start uploading a 100 KB object list (an Update).
    devices = [await Uploader.open(port) for _ in range(3)]
    updates: list[tuple[Uploader, str, bytes]] = []
    for i, dev in enumerate(devices):
        created = await dev.send(Message.request(
            Code.POST, "/rd", query=[f"ep=legit-{i}", "lt=300", "lwm2m=1.1", "b=U"],
            payload=LINKS, content_format=40))
        assert created.code == Code.CREATED
        body = big_links(100_000)
        path = "/" + "/".join(created.location_path)
        assert (await dev.blocks(path, [], body, 0, 49)).code == Code.CONTINUE
        updates.append((dev, path, body))

    # The flood: 1,104 uploads from 138 unregistered peers (more than the 1,024 uploads
    # the assembler holds, and past the 1 MiB budget), then 10 peers pushing past 64 KiB.
    counting = [await Uploader.open(port) for _ in range(138)]
    filling = [await Uploader.open(port) for _ in range(10)]
    try:
        async def start_many(up: Uploader, n: int) -> None:
            for k in range(n):
                answer = await up.block("/rd", [f"ep=flood-{id(up)}-{k}"], bytes(4096), 0,
                                        True)
                assert answer.code == Code.CONTINUE

        async def fill(up: Uploader) -> Message:
            return await up.blocks("/rd", [f"ep=fill-{id(up)}"], bytes(100_000), 0, 64)

        await asyncio.gather(*(start_many(up, 8) for up in counting))
        refusals = await asyncio.gather(*(fill(up) for up in filling))
        # Past 64 KiB an unregistered peer is told its limit.
        for answer in refusals:
            assert answer.code == Code.REQUEST_ENTITY_TOO_LARGE
            assert answer.size1 == LIMITS.untrusted_peer_bytes
        assert block1.buffered <= LIMITS.transport_bytes
        assert len(block1) <= block1.max_transfers
        assert block1.evicted >= 1104 - block1.max_transfers

        # The registered devices' uploads were not given up: they finish.
        for dev, path, body in updates:
            done = await dev.blocks(path, [], body, 50, 200)
            assert done.code == Code.CHANGED, done
        for i in range(3):
            assert len(server.registrations[f"legit-{i}"].objects) > 5000
    finally:
        for up in devices + counting + filling:
            up.close()


async def test_a_gateway_registers_with_a_large_object_list() -> None:
    """With the default budgets: an unregistered gateway's 100 KB Register (8,000 object
    instances) goes through block-wise; 300 KB is more than an unregistered peer may
    upload (4.13 with Size1)."""
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    try:
        remote = ("127.0.0.1", srv.port)
        async with await UdpEndpoint.create("127.0.0.1", 0) as gateway:
            register = Message.request(Code.POST, "/rd", query=["ep=gw", "lwm2m=1.1"],
                                       payload=big_links(100_000), content_format=40)
            created = await gateway.request(register, remote, timeout=10)
            assert created.code == Code.CREATED, created.payload
            assert len(srv.registrations["gw"].objects) > 5000
        # (From another address: the first one is registered now, so it may upload more.)
        async with await UdpEndpoint.create("127.0.0.1", 0) as other:
            too_big = Message.request(Code.POST, "/rd", query=["ep=gw2", "lwm2m=1.1"],
                                      payload=big_links(300_000), content_format=40)
            refused = await other.request(too_big, remote, timeout=10)
            assert refused.code == Code.REQUEST_ENTITY_TOO_LARGE
            assert refused.size1 == ReassemblyLimits().untrusted_peer_bytes
    finally:
        await srv.stop()


async def test_bert_is_refused_over_udp(server: LwM2MServer) -> None:
    up = await Uploader.open(server.port)
    try:
        upload = Message.request(Code.POST, "/rd", query=["ep=bert"], payload=bytes(2048),
                                 content_format=40)
        upload.block1 = BlockValue(0, True, 7)
        answer = await up.send(upload)
        assert answer.code == Code.BAD_REQUEST and b"BERT" in answer.payload
        download = Message.request(Code.GET, "/.well-known/core")
        download.block2 = BlockValue(0, False, 7)
        answer = await up.send(download)
        assert answer.code == Code.BAD_REQUEST and b"BERT" in answer.payload
        assert len(server.udp.dispatcher.block1) == 0
    finally:
        up.close()
