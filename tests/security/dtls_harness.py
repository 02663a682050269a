"""A tiny asyncio UDP adapter around ``DtlsServer``/``DtlsClient`` that speaks CoAP.

The server answers GET /hello with 2.05 "world", GET / with 2.05 "aiolwm2m",
GET /.well-known/core with a link list, and echoes the payload of a PUT (2.04).
Everything else gets 4.04. This is test scaffolding, not the project's transport.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Hashable
from typing import Any, cast

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    ApplicationData,
    DtlsClient,
    DtlsServer,
    Event,
    HandshakeCompleted,
    SessionClosed,
)


def coap_answer(request: Message) -> Message | None:
    if request.mtype in (MessageType.ACK, MessageType.RST) or not request.is_request:
        return None
    path = "/" + "/".join(request.uri_path)
    if request.code == Code.GET and path == "/hello":
        resp = request.response(Code.CONTENT, b"world", 0)
    elif request.code == Code.GET and path == "/":
        resp = request.response(Code.CONTENT, b"aiolwm2m", 0)
    elif request.code == Code.GET and path == "/.well-known/core":
        resp = request.response(Code.CONTENT, b"</hello>,</echo>", 40)
    elif request.code == Code.PUT and path == "/echo":
        resp = request.response(Code.CHANGED, request.payload, 0)
    else:
        resp = request.response(Code.NOT_FOUND)
    if request.mtype == MessageType.CON:
        resp.mtype, resp.mid = MessageType.ACK, request.mid
    else:
        resp.mtype, resp.mid = MessageType.NON, (request.mid + 1) & 0xFFFF
    return resp


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, harness: DtlsServerHarness) -> None:
        self.harness = harness

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.harness.on_datagram(data, addr)


class DtlsServerHarness:
    """Runs a ``DtlsServer`` on 127.0.0.1:<ephemeral> and records every event."""

    def __init__(self, server: DtlsServer) -> None:
        self.server = server
        self.events: list[Event] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> DtlsServerHarness:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _ServerProtocol(self), local_addr=("127.0.0.1", 0))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.server.close()
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def on_datagram(self, data: bytes, addr: Hashable) -> None:
        now = asyncio.get_running_loop().time()
        self._handle(self.server.receive_datagram(data, addr, now), now)

    def _handle(self, events: list[Event], now: float) -> None:
        for event in events:
            self.events.append(event)
            if isinstance(event, ApplicationData):
                try:
                    request = decode_udp(event.data)
                except Exception:
                    continue
                answer = coap_answer(request)
                if answer is not None:
                    self.server.send(event.peer, encode_udp(answer), now)
        if events:
            self._changed.set()
        self._flush()
        self._rearm()

    def _flush(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        for data, peer in self.server.outgoing():
            self._transport.sendto(data, cast(tuple[str, int], peer))

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.server.next_deadline()
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        self._handle(self.server.handle_timeout(now), now)

    def completed(self) -> list[HandshakeCompleted]:
        return [e for e in self.events if isinstance(e, HandshakeCompleted)]

    def closed(self) -> list[SessionClosed]:
        return [e for e in self.events if isinstance(e, SessionClosed)]

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every batch of events)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


_mids = itertools.count(int.from_bytes(os.urandom(2), "big"))


class DtlsClientHarness:
    """Drives a ``DtlsClient`` over a connected UDP socket (a new source port each time)."""

    def __init__(self, client: DtlsClient, port: int, host: str = "127.0.0.1") -> None:
        self.client = client
        self.addr = (host, port)
        self.events: list[Event] = []
        self._proto = _ClientProtocol()
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> DtlsClientHarness:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self._proto, remote_addr=self.addr)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.close()
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def _flush(self) -> None:
        assert self._transport is not None
        for data in self.client.outgoing():
            self._transport.sendto(data)

    async def _pump_until(self, done: Any, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not done():
                self._flush()
                deadline = self.client.next_deadline()
                wait = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    data = await asyncio.wait_for(self._proto.queue.get(), wait)
                except TimeoutError:
                    self.events += self.client.handle_timeout(loop.time())
                    continue
                self.events += self.client.receive_datagram(data, loop.time())
            self._flush()

    async def handshake(self, timeout: float = 5.0) -> Event:
        """Run the handshake; returns HandshakeCompleted or the SessionClosed that ended it."""
        loop = asyncio.get_running_loop()
        start = len(self.events)
        self.events += self.client.start(loop.time())

        def finished() -> bool:
            return any(isinstance(e, HandshakeCompleted | SessionClosed)
                       for e in self.events[start:])

        await self._pump_until(finished, timeout)
        return next(e for e in self.events[start:]
                    if isinstance(e, HandshakeCompleted | SessionClosed))

    async def request(self, msg: Message, timeout: float = 5.0) -> Message:
        """Send one CoAP request through the session and wait for its response."""
        msg.mid = next(_mids) & 0xFFFF
        if not msg.token:
            msg.token = os.urandom(4)
        self.client.send(encode_udp(msg))
        start = len(self.events)
        found: list[Message] = []

        def answered() -> bool:
            for e in self.events[start:]:
                if isinstance(e, ApplicationData):
                    resp = decode_udp(e.data)
                    if resp.token == msg.token and resp.code != Code.EMPTY:
                        found.append(resp)
                        return True
                if isinstance(e, SessionClosed):
                    raise ConnectionError(e.reason)
            return False

        await self._pump_until(answered, timeout)
        return found[0]
