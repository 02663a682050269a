"""What a TcpEndpoint lets accepted connections hold (StreamLimits), over real sockets.

Each test runs on asyncio and on uvloop (tests/conftest.py). Times are shortened to tenths
of a second; assertions are on states and counts, with generous waits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.signals import build_ping
from aiolwm2m.coap.tcp_connection import TcpParameters
from aiolwm2m.coap.tcp_framing import encode_tcp
from aiolwm2m.security import InMemoryCredentialLookup, ServerCredentials
from aiolwm2m.transport.accept_errors import AcceptErrorFilter, throttle_accept_errors
from aiolwm2m.transport.stream_limits import StreamLimits
from aiolwm2m.transport.tcp import StreamPeer, TcpEndpoint
from aiolwm2m.transport.tls import TlsServerSecurity

from .raw_stream import RawStream

Factory = Callable[..., Awaitable[TcpEndpoint]]


@pytest.fixture
async def listener() -> AsyncIterator[Factory]:
    made: list[TcpEndpoint] = []

    async def make(**kwargs: Any) -> TcpEndpoint:
        ep = await TcpEndpoint.create("127.0.0.1", 0, dial=False, **kwargs)
        made.append(ep)
        return ep

    yield make
    for ep in made:
        await ep.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def opened(port: int, source: str | None = None) -> RawStream:
    """A connection that sent its CSM and got the server's."""
    raw = await RawStream.open(port, source=source)
    await raw.recv_until(Code.CSM)
    return raw


async def refused(port: int, source: str | None = None) -> bool:
    """True when the server drops the connection without a CSM."""
    try:
        raw = await RawStream.open(port, source=source)
    except ConnectionError:
        return True
    try:
        await raw.recv(3.0)
    except (EOFError, ConnectionError):
        return True
    finally:
        raw.close()
    return False


async def test_a_connection_that_sent_only_a_csm_is_released_when_idle(
        listener: Factory) -> None:
    ep = await listener(limits=StreamLimits(unbound_idle_timeout=0.3))
    raw = await opened(ep.port)
    assert ep.quota.total == 1
    release = await raw.recv(5.0)
    assert release.code == Code.RELEASE and b"idle for 0.3s" in release.payload
    assert await raw.closed_by_server(5.0)
    await eventually(lambda: ep.quota.total == 0 and not ep.connections())


async def test_a_kept_connection_may_stay_silent(listener: Factory) -> None:
    asked: list[StreamPeer] = []

    def keep(peer: StreamPeer) -> bool:
        asked.append(peer)
        return True

    ep = await listener(limits=StreamLimits(unbound_idle_timeout=0.2), keep_idle=keep)
    raw = await opened(ep.port)
    await eventually(lambda: len(asked) >= 3)  # asked once per idle period, kept each time
    raw.send(build_ping(b"p1"))
    assert (await raw.recv_until(Code.PONG)).token == b"p1"
    raw.close()


async def test_pings_count_as_activity(listener: Factory) -> None:
    # Generous margins (a loaded 2-core CI box stalls for tenths of a second): pings 0.3 s
    # apart for 4.8 s keep a connection whose idle timeout is 1.5 s.
    ep = await listener(limits=StreamLimits(unbound_idle_timeout=1.5))
    raw = await opened(ep.port)
    for i in range(16):
        raw.send(build_ping(bytes([i])))
        assert (await raw.recv_until(Code.PONG)).code == Code.PONG
        await asyncio.sleep(0.3)
    assert (await raw.recv(5.0)).code == Code.RELEASE  # and once it stops, it goes
    assert await raw.closed_by_server(5.0)


async def test_a_partial_frame_is_aborted_after_the_frame_timeout(listener: Factory) -> None:
    ep = await listener(params=TcpParameters(frame_timeout=0.3))
    raw = await opened(ep.port)
    frame = Message.request(Code.PUT, "/x", payload=b"y" * 60_000, token=b"t")
    raw.send(encode_tcp(frame)[:50_000])
    abort = await raw.recv(5.0)
    assert abort.code == Code.ABORT and b"frame not completed" in abort.payload
    assert await raw.closed_by_server(5.0)


async def test_a_tls_handshake_must_finish_in_time(listener: Factory) -> None:
    security = TlsServerSecurity(ServerCredentials(InMemoryCredentialLookup(
        psk={b"id": b"0123456789abcdef"})))
    ep = await listener(tls_server=security, limits=StreamLimits(handshake_timeout=0.3))
    silent = await RawStream.open(ep.port, csm=False)
    half = await RawStream.open(ep.port, csm=False)
    half.send(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never finished
    for raw in (silent, half):
        with pytest.raises((EOFError, ConnectionError)):
            await raw.recv(5.0)
    await eventually(lambda: ep.quota.total == 0)


async def test_per_address_cap_leaves_other_addresses_in(listener: Factory) -> None:
    refusals: list[tuple[str, StreamPeer]] = []
    ep = await listener(limits=StreamLimits(max_connections_per_address=3),
                        on_refused=lambda reason, peer: refusals.append((reason, peer)))
    first = [await opened(ep.port) for _ in range(3)]
    assert await refused(ep.port)
    assert [(reason, peer[0]) for reason, peer in refusals] == [
        ("tcp-address-limit", "127.0.0.1")]
    other = await opened(ep.port, source="127.0.0.2")
    # A slot frees when a connection ends.
    first.pop().close()
    await eventually(lambda: ep.quota.by_address.get("127.0.0.1") == 2)
    again = await opened(ep.port)
    for raw in (*first, other, again):
        raw.close()


async def test_total_cap_and_the_log_when_nobody_counts(listener: Factory,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.WARNING, "aiolwm2m.transport.tcp")
    ep = await listener(limits=StreamLimits(max_connections=2))
    held = [await opened(ep.port), await opened(ep.port, source="127.0.0.2")]
    for _ in range(12):
        assert await refused(ep.port, source="127.0.0.3")
    lines = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    # A few lines, then silence for the rest of the interval.
    assert 1 <= len(lines) <= 5 and "tcp-connection-limit" in lines[0]
    assert ep.quota.total == 2
    for raw in held:
        raw.close()


async def test_the_self_check_leaves_no_trace(listener: Factory) -> None:
    events: list[object] = []
    ep = await listener(limits=StreamLimits(max_connections=1))
    ep.events.subscribe(events.append)
    await ep.self_check()
    await asyncio.sleep(0.1)
    assert events == [] and ep.quota.total == 0 and ep.connections() == []
    raw = await opened(ep.port)  # the one slot is still free
    raw.close()


async def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    loop = asyncio.get_running_loop()
    others: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: others.append(context))
    listening = socket.socket()
    try:
        throttle_accept_errors(loop, interval=60.0)
        throttle_accept_errors(loop, interval=60.0)  # installed once
        handler = loop.get_exception_handler()
        assert isinstance(handler, AcceptErrorFilter)
        assert not isinstance(handler.previous, AcceptErrorFilter)
        caplog.set_level(logging.WARNING, "aiolwm2m.transport.accept")
        error = OSError(24, "Too many open files")
        for _ in range(500):
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": error, "socket": listening})
        loop.call_exception_handler({"message": "something else"})
        accept_lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
        assert len(accept_lines) == 1 and handler.suppressed == 499
        assert [c["message"] for c in others] == ["something else"]
    finally:
        loop.set_exception_handler(None)
        listening.close()


def test_the_connection_cap_fits_the_descriptor_limit() -> None:
    limits = StreamLimits(max_connections=10_000)
    assert limits.fit_descriptors(2, reserve=256, soft_limit=1024).max_connections == 384
    assert limits.fit_descriptors(2, reserve=256, soft_limit=100_000) is limits
    assert StreamLimits(max_connections=None).fit_descriptors(
        1, soft_limit=1024).max_connections == 768
    with pytest.raises(ValueError, match="positive"):
        StreamLimits(unbound_idle_timeout=0)
    with pytest.raises(ValueError, match="at least 1"):
        StreamLimits(max_connections_per_address=0)
