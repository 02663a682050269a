"""Server-sent events fanned out by SseFanout, with real HTTP clients: publishing touches no
subscriber (one append, encoding deferred and done once), the endpoint filter, keep-alives,
waking many subscribers in groups, and a subscriber that goes away is forgotten."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer
from aiolwm2m.web.sse_fanout import WAKE_PER_ITERATION, SseFanout

from .sse_client import SseReader, shared_client

TOKEN = "sse-token-0123456789"


@contextlib.asynccontextmanager
async def served(keepalive: float = 15.0) -> AsyncIterator[tuple[LwM2MServer, str, SseFanout]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    app = create_app(server, [TOKEN])
    app.state.sse = fanout = SseFanout(server, keepalive=keepalive)
    web = WebServer(app, "127.0.0.1", 0)
    await web.start()
    try:
        yield server, web.url, fanout
    finally:
        await web.stop()
        await server.stop()


def emit(server: LwM2MServer, first: int, count: int) -> None:
    for i in range(first, first + count):
        server.events.emit(Refused(transport="udp", reason="test", endpoint=f"ep-{i}"))


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_publishing_is_one_append_and_each_event_is_encoded_once() -> None:
    count = WAKE_PER_ITERATION * 2 + 5  # woken in three groups
    async with served() as (server, url, fanout), \
            shared_client(url, TOKEN, count) as http:
        readers = [SseReader(url, TOKEN, shared=http) for _ in range(count)]
        try:
            await asyncio.gather(*(r.open() for r in readers))
            await until(lambda: len(fanout._waiters) == count)
            waiters = list(fanout._waiters)
            emit(server, 0, 100)
            # Nothing was encoded or woken on the emitter's path.
            assert fanout.encoded == 0 and not any(w.done() for w in waiters)
            await asyncio.gather(*(asyncio.wait_for(
                r.read_until(lambda r: len(r.events) == 100), 10) for r in readers))
            for r in readers:
                assert [e["endpoint"] for _, e in r.events] == [f"ep-{i}" for i in range(100)]
            assert fanout.encoded == 100
        finally:
            for r in readers:
                await r.close()


async def test_endpoint_filter_shares_the_encoding() -> None:
    async with served() as (server, url, fanout):
        everything, filtered = SseReader(url, TOKEN), SseReader(url, TOKEN)
        try:
            await everything.open()
            await filtered.open({"endpoint": "ep-3"})
            await until(lambda: fanout.subscribers == 2)
            emit(server, 0, 5)
            await asyncio.wait_for(everything.read_until(lambda r: len(r.events) == 5), 10)
            await asyncio.wait_for(filtered.read_until(lambda r: len(r.events) == 1), 10)
            assert filtered.events[0][1]["endpoint"] == "ep-3"
            assert fanout.encoded == 5
        finally:
            await everything.close()
            await filtered.close()


async def test_keepalive_and_departures() -> None:
    async with served(keepalive=0.2) as (server, url, fanout):
        reader, leaver = SseReader(url, TOKEN), SseReader(url, TOKEN)
        try:
            await reader.open()
            await leaver.open()
            await until(lambda: fanout.subscribers == 2)
            await asyncio.wait_for(reader.read_until(lambda r: len(r.comments) >= 2), 10)
            assert reader.comments[:2] == [": keep-alive", ": keep-alive"]
            # A client that disconnects while its subscriber waits is forgotten at once.
            await leaver.close()
            await until(lambda: fanout.subscribers == 1)
            emit(server, 0, 1)
            await asyncio.wait_for(reader.read_until(lambda r: len(r.events) == 1), 10)
        finally:
            await reader.close()
            await leaver.close()
        await until(lambda: fanout.subscribers == 0)
        assert fanout._unsubscribe is None and fanout._tick is None
        emit(server, 1, 3)  # nobody subscribed: nothing is kept
        assert not fanout._log
