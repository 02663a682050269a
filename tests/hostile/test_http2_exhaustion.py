"""Exhausting the server through its HTTP/2 listener: silent connections, slow bodies, one
address taking every slot, rapid resets, stream and header floods, a device that never
reads its downlink stream, HTTP/1.x floods, answer-stream floods. Real sockets on loopback
against a real LwM2MServer (limits shortened to a second), on asyncio and on uvloop;
meanwhile a device registered over HTTP/2 keeps working."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import h2.settings
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import ContinuationFrame, HeadersFrame

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.http2.h2_state import PREFACE
from aiolwm2m.http2.limits import Http2Limits
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.errors import RequestFailed
from aiolwm2m.transport.stream_limits import StreamLimits
from tests.http2.raw_device import RawH2, register_headers

# Idle connections are closed after 2 s: short for a test, yet long enough that a loaded
# machine opens a test's whole batch of connections before the first of them idles out.
LIMITS = StreamLimits(unbound_idle_timeout=2.0, handshake_timeout=1.0,
                      max_connections_per_address=20)
H2_LIMITS = Http2Limits(max_body=64 << 10, connection_body_budget=128 << 10,
                        request_timeout=1.0, max_concurrent_streams=8, resets_per_second=5,
                        reset_burst=20, max_envelope=64 << 10, answer_timeout=5.0)


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory",
                                   tcp_limits=LIMITS, http2_limits=H2_LIMITS))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def device(server: LwM2MServer) -> AsyncIterator[LwM2MClient]:
    """A well-behaved device from its own address (the attacks come from 127.0.0.1)."""
    client = LwM2MClient(ClientConfig.development(
        "good-dev", f"http2://127.0.0.1:{server.port_of('http2')}", host="127.0.0.2"))
    await client.start()
    await client.wait_registered(10)
    yield client
    await client.stop()


def connections(server: LwM2MServer) -> int:
    return len(server.transports["http2"].connections())  # type: ignore[attr-defined]


async def still_served(server: LwM2MServer) -> None:
    resp = await server.read("good-dev", "/3/0/0", timeout=5)
    assert resp.code == Code.CONTENT


async def until(predicate: object, timeout: float = 6.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_silent_connections_and_slow_bodies(server: LwM2MServer,
                                                  device: LwM2MClient) -> None:
    port = server.port_of("http2")
    baseline = connections(server)
    silent = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port)
                                    for _ in range(5)))
    preface_only = await asyncio.gather(*(RawH2.open("127.0.0.1", port) for _ in range(5)))
    slow = await RawH2.open("127.0.0.1", port)
    sid = slow.request("POST", "/dp", [("content-type", "application/senml+json")],
                       b"[{", end=False)
    await until(lambda: connections(server) == baseline + 11)
    # The slow body is answered 408 and its buffer freed...
    await asyncio.wait_for(slow.streams[sid].ended.wait(), 5)
    assert slow.streams[sid].status == 408
    # ... and every connection without a registration is closed once idle.
    await until(lambda: connections(server) == baseline)
    for raw in (*preface_only, slow):
        # The server counts a connection out once its GOAWAY is written; the end follows.
        await asyncio.wait_for(raw.closed.wait(), 5)
        await raw.close()
    for reader, writer in silent:
        await asyncio.wait_for(reader.read(), 5)  # a GOAWAY, then the end
        assert reader.at_eof()
        writer.close()
    assert server.refusals.by_reason["http2-slow-request"] == 1
    await still_served(server)


async def test_one_address_cannot_take_every_slot(server: LwM2MServer,
                                                  device: LwM2MClient) -> None:
    port = server.port_of("http2")
    # At once: each is refused or held (until it idles out, which is no refusal).
    raws = await asyncio.gather(*(RawH2.open("127.0.0.1", port) for _ in range(25)))
    try:
        await until(lambda: server.refusals.by_reason["tcp-address-limit"] == 5)
        await until(lambda: sum(r.closed.is_set() for r in raws) >= 5)
        await asyncio.sleep(0.2)
        assert server.refusals.by_reason["tcp-address-limit"] == 5
        await still_served(server)
    finally:
        for raw in raws:
            await raw.close()


async def test_rapid_resets_and_stream_floods_close_the_connection(
        server: LwM2MServer, device: LwM2MClient) -> None:
    port = server.port_of("http2")
    raw = await RawH2.open("127.0.0.1", port)
    for _ in range(40):
        sid = raw.request("POST", "/dp", [("content-type", "text/plain")], b"x", end=False)
        raw.reset(sid)
        if raw.closed.is_set():
            break
    await asyncio.wait_for(raw.closed.wait(), 5)
    assert raw.goaway == ErrorCodes.ENHANCE_YOUR_CALM
    await raw.close()
    # More open streams than SETTINGS_MAX_CONCURRENT_STREAMS (8): a protocol error.
    raw = await RawH2.open("127.0.0.1", port)
    await asyncio.sleep(0.1)  # the server's SETTINGS are in
    raw.conn.update_settings({})
    raw.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1000
    raw.conn.remote_settings.acknowledge()
    for _ in range(12):
        raw.request("POST", "/dp", [("content-type", "text/plain")], b"x", end=False)
    await asyncio.wait_for(raw.closed.wait(), 5)
    assert raw.goaway == ErrorCodes.PROTOCOL_ERROR
    await raw.close()
    assert server.refusals.by_reason["h2-rapid-reset"] == 1
    assert server.refusals.by_reason["h2-protocol-error"] == 1
    await still_served(server)


async def test_header_floods(server: LwM2MServer, device: LwM2MClient) -> None:
    port = server.port_of("http2")
    # A header list over SETTINGS_MAX_HEADER_LIST_SIZE (16 KiB).
    raw = await RawH2.open("127.0.0.1", port)
    await asyncio.sleep(0.1)
    raw.request("GET", "/rd", [(f"x-{i}", "v" * 1000) for i in range(40)])
    await asyncio.wait_for(raw.closed.wait(), 5)
    await raw.close()
    # A header block that never ends: CONTINUATION frames until the server stops it.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    head = HeadersFrame(1)
    head.flags.add("END_STREAM")
    head.data = b"\x82"  # :method GET (indexed)
    writer.write(head.serialize())
    for _ in range(200):
        frame = ContinuationFrame(1)
        frame.data = b"\x00" * 1000
        writer.write(frame.serialize())
        if writer.transport.is_closing():
            break
    try:
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5)  # until the server closes
    except ConnectionResetError:
        pass  # it closed while frames were still arriving
    writer.close()
    assert server.refusals.by_reason["h2-protocol-error"] == 2
    await still_served(server)


async def test_device_that_never_reads_its_downlink(server: LwM2MServer,
                                                    device: LwM2MClient) -> None:
    raw = await RawH2.open("127.0.0.1", server.port_of("http2"))
    # It grants the server no flow-control credit at all.
    raw.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    raw.flush()
    state = await raw.exchange("POST", "/rd?ep=deaf&b=H", register_headers(), b"</3/0>")
    location = state.headers["location"]
    await raw.downlink(location)
    big = "x" * (40 << 10)
    writes = [asyncio.create_task(server.write("deaf", "/3/0/14", big, timeout=2))
              for _ in range(4)]
    results = await asyncio.gather(*writes, return_exceptions=True)
    # What fits the envelope budget waits (and times out); the rest fails at once.
    assert any(isinstance(r, RequestFailed) and "does not read" in str(r) for r in results)
    endpoint = server.transports["http2"]
    conn = endpoint.connection_at(server.registrations["deaf"].address)  # type: ignore[attr-defined]
    assert conn is not None
    assert conn.core.unsent(1) <= (64 << 10) + (41 << 10)
    await raw.close()
    assert endpoint is server.transports["http2"]
    await still_served(server)


async def test_http1_flood_is_refused_and_logged_sparingly(
        server: LwM2MServer, device: LwM2MClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "aiolwm2m.server.refusals")
    port = server.port_of("http2")
    for _ in range(60):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /rd HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 505 ")
        writer.close()
    assert server.refusals.by_reason["http1"] == 60
    lines = [r for r in caplog.records if "(http1)" in r.getMessage()]
    assert len(lines) <= 20
    await still_served(server)


async def test_answer_stream_floods(server: LwM2MServer, device: LwM2MClient) -> None:
    """A registered device floods its answer stream with answers to nothing, and holds
    incomplete items on several answer streams: rejections stop at the bound (each no larger
    than a small constant plus the identity it names), and what the connection holds stays
    within its body budget."""
    from aiolwm2m.http2.answers import Answer, encode_answers

    raw = await RawH2.open("127.0.0.1", server.port_of("http2"))
    try:
        state = await raw.exchange("POST", "/rd?ep=flood&b=H", register_headers(), b"</3/0>")
        location = state.headers["location"]
        seq = [("content-type", "application/cbor-seq")]
        sid = raw.request("POST", f"{location}/responses", seq, end=False)
        flood = encode_answers([Answer(f"n{i}", 200) for i in range(1000)])
        raw.conn.send_data(sid, flood[:16000])
        raw.flush()
        stream = raw.streams[sid]
        await asyncio.wait_for(stream.ended.wait(), 6)
        assert stream.trailers == {"lwm2m-closed": "too many answers to no request"}
        limit = Http2Limits().unmatched_answers
        assert len(stream.body) <= limit * 40 < len(flood[:16000])
        assert server.refusals.by_reason["http2-unmatched-answers"] == 1
        # Incomplete items on several answer streams at once: held within the connection's
        # body budget (flow control holds the rest back), whatever the device sends.
        head = b"\xd8\x18\x5a" + (60 << 10).to_bytes(4, "big")
        for _ in range(4):
            sid = raw.request("POST", f"{location}/responses", seq, end=False)
            body = head + b"p" * (50 << 10)
            for _round in range(20):  # as much as flow control lets through
                room = min(raw.conn.local_flow_control_window(sid), 16000, len(body))
                if room > 0:
                    raw.conn.send_data(sid, body[:room])
                    body = body[room:]
                    raw.flush()
                if not body:
                    break
                await asyncio.sleep(0.02)
        endpoint = server.transports["http2"]
        conn = endpoint.connection_at(server.registrations["flood"].address)  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        assert conn is not None
        assert conn.core.held <= H2_LIMITS.connection_body_budget + (64 << 10)
    finally:
        await raw.close()
    await still_served(server)
