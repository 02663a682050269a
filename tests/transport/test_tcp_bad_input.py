"""Protocol violations over real sockets: Abort with a diagnostic, close, others unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.cli.coap_server import TextResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.tcp_connection import TcpParameters
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_events import AbortSent, TcpConnectionEvent

from .raw_stream import RawStream


@pytest.fixture
async def server() -> AsyncIterator[TcpEndpoint]:
    site = Site()
    site.add("hello", TextResource("still here"))
    ep = await TcpEndpoint.create("127.0.0.1", 0, site=site,
                                  params=TcpParameters(max_message_size=4096, csm_timeout=0.3))
    yield ep
    await ep.close()


async def hello(raw: RawStream) -> bytes:
    raw.send(Message.request(Code.GET, "/hello", token=b"h"))
    return (await raw.recv_until(Code.CONTENT)).payload


CSM = Message(0, Code.CSM)


@pytest.mark.parametrize("name, stream, diagnostic, bad_option", [
    ("garbage", b"\x00\xe1" + b"\x0f\xff\xff\xff", "reserved token length", None),
    ("bad options", b"\x00\xe1" + b"\x20\x01\xf1\x00", "malformed frame", None),
    ("too long", b"\x00\xe1" + b"\xf0\x00\x10\x00\x00", "exceeds the Max-Message-Size", None),
    ("no CSM first", Message.request(Code.GET, "/hello"), "first message must be a CSM",
     None),
    ("invalid CSM value", Message(0, Code.CSM, options=[(2, b"\x01" * 6)]),
     "invalid length", 2),
    ("unknown critical CSM option", Message(0, Code.CSM, options=[(4, b""), (11, b"x")]),
     "unknown critical option 11", 11),
])
async def test_bad_input_is_aborted(server: TcpEndpoint, name: str, stream: bytes | Message,
                                    diagnostic: str, bad_option: int | None) -> None:
    events: list[TcpConnectionEvent] = []
    server.events.subscribe(events.append)
    bystander = await RawStream.open(server.port)
    assert await hello(bystander) == b"still here"
    bad = await RawStream.open(server.port, csm=False)
    bad.send(stream)
    abort = await bad.recv_until(Code.ABORT)
    assert diagnostic in abort.payload.decode(), name
    if bad_option is not None:
        assert abort.get_option(2) == bytes((bad_option,))
    assert await bad.closed_by_server()
    [sent] = [e for e in events if isinstance(e, AbortSent)]
    assert diagnostic in sent.abort.diagnostic
    # The other connection is unaffected.
    assert await hello(bystander) == b"still here"
    assert len(server.connections()) == 1
    bystander.close()
    bad.close()


async def test_missing_csm_times_out(server: TcpEndpoint) -> None:
    silent = await RawStream.open(server.port, csm=False)
    abort = await silent.recv_until(Code.ABORT, timeout=2)
    assert "no CSM" in abort.payload.decode()
    assert await silent.closed_by_server()
    silent.close()


async def test_unknown_elective_signal_options_are_ignored(server: TcpEndpoint) -> None:
    raw = await RawStream.open(server.port, csm=False)
    raw.send(Message(0, Code.CSM, options=[(4, b""), (10, b"future")]))
    raw.send(Message(0, Code.PING, token=b"p", options=[(2, b""), (6, b"?")]))
    pong = await raw.recv_until(Code.PONG)
    assert pong.token == b"p" and pong.get_option(2) == b""  # Custody echoed
    assert await hello(raw) == b"still here"
    raw.close()


async def test_the_peer_can_abort_us(server: TcpEndpoint) -> None:
    raw = await RawStream.open(server.port)
    assert await hello(raw) == b"still here"
    raw.send(Message(0, Code.ABORT, payload=b"client gives up"))
    assert await raw.closed_by_server()
    await asyncio.sleep(0.05)
    assert server.connections() == []
    raw.close()
