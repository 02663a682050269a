"""Back-pressure: a peer that does not read stops being read, and buffers stay bounded."""

from __future__ import annotations

import asyncio

from aiolwm2m.cli.coap_server import CounterResource, StoreResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_link import TcpLink

from .raw_stream import RawStream

CHUNK = bytes(range(256)) * 240  # 60 KiB: fits the raw client's Max-Message-Size whole


def only_link(ep: TcpEndpoint) -> TcpLink:
    [peer] = ep.connections()
    assert peer.link is not None
    return peer.link


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_slow_reader_is_not_read_and_buffers_stay_bounded() -> None:
    site = Site()
    site.add("chunk", StoreResource(CHUNK, 42))
    server = await TcpEndpoint.create("127.0.0.1", 0, site=site, write_high_water=32 * 1024)
    raw = await RawStream.open(server.port, rcvbuf=4096)
    try:
        # 400 requests for 60 KiB each (24 MB of responses) while reading nothing.
        for i in range(400):
            raw.send(Message.request(Code.GET, "/chunk", token=i.to_bytes(2, "big")))
        await raw.writer.drain()
        await wait_until(lambda: server.connections() and only_link(server).write_paused)
        link = only_link(server)
        assert link.transport is not None and not link.transport.is_reading()
        # Unsent bytes stay near the high-water mark: one response beyond it at most.
        assert link.transport.get_write_buffer_size() < 32 * 1024 + 2 * len(CHUNK)
        # Now read everything: all 400 answers arrive, the server reads again.
        got = 0
        while got < 400:
            msg = await raw.recv(timeout=5)
            if msg.code == Code.CONTENT:
                assert msg.payload == CHUNK
                got += 1
        await wait_until(lambda: not link.write_paused)
        assert link.transport.is_reading()
    finally:
        raw.close()
        await server.close()


async def test_notifications_to_a_stalled_observer_are_coalesced() -> None:
    site = Site()
    counter = site.add("counter", CounterResource())
    big = site.add("big", StoreResource(CHUNK, 42))
    assert isinstance(counter, CounterResource)
    server = await TcpEndpoint.create("127.0.0.1", 0, site=site, write_high_water=16 * 1024)
    raw = await RawStream.open(server.port, rcvbuf=4096)
    try:
        raw.send(Message.request(Code.GET, "/counter", observe=0, token=b"obs"))
        first = await raw.recv_until(Code.CONTENT)
        assert first.token == b"obs"
        # Stall the connection with large responses nobody reads.
        for i in range(300):
            raw.send(Message.request(Code.GET, "/big", token=i.to_bytes(2, "big")))
        await raw.writer.drain()
        await wait_until(lambda: only_link(server).write_paused)
        for value in range(1, 1001):
            counter.value = value
            counter.notify()
        # Drain: the held notifications collapse into the latest one.
        notes: list[bytes] = []
        while True:
            try:
                msg = await raw.recv(timeout=1.0)
            except TimeoutError:
                break
            if msg.token == b"obs":
                notes.append(msg.payload)
        assert notes[-1] == b"1000"
        assert len(notes) < 50, f"{len(notes)} notifications were queued"
        del big
    finally:
        raw.close()
        await server.close()
