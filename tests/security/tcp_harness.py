"""CoAP over TLS over TCP (RFC 8323) around the sans-IO TLS connections, for tests only.

A minimal stream framing (Len/TKL nibble, extended length, code, token, options, payload)
and asyncio adapters: a listener running ``TlsServer`` that answers like the DTLS harness,
and a client driving ``TlsClientConnection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from aiolwm2m.coap.codec import decode_options, encode_options
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    ApplicationData,
    Event,
    HandshakeCompleted,
    SessionClosed,
    TlsClientConnection,
    TlsServer,
)

from .dtls_harness import coap_answer

CSM = Code.CSM


def encode_frame(msg: Message) -> bytes:
    body = bytearray()
    encode_options(sorted(msg.options, key=lambda o: o[0]), body)
    if msg.payload:
        body += b"\xff" + msg.payload
    n, tkl = len(body), len(msg.token)
    if n < 13:
        head = bytes(((n << 4) | tkl,))
    elif n < 269:
        head = bytes(((13 << 4) | tkl, n - 13))
    elif n < 65805:
        head = bytes(((14 << 4) | tkl,)) + (n - 269).to_bytes(2, "big")
    else:
        head = bytes(((15 << 4) | tkl,)) + (n - 65805).to_bytes(4, "big")
    return head + bytes((msg.code,)) + msg.token + body


def decode_frames(buf: bytearray) -> list[Message]:
    """Every complete frame at the start of ``buf`` (consumed from it)."""
    out: list[Message] = []
    while buf:
        nib, tkl = buf[0] >> 4, buf[0] & 0x0F
        ext = {13: 1, 14: 2, 15: 4}.get(nib, 0)
        if len(buf) < 1 + ext:
            break
        length = nib if not ext else int.from_bytes(buf[1 : 1 + ext], "big") + \
            {1: 13, 2: 269, 4: 65805}[ext]
        start = 1 + ext + 1 + tkl
        end = start + length
        if len(buf) < end:
            break
        code = buf[1 + ext]
        token = bytes(buf[2 + ext : start])
        options, payload = decode_options(bytes(buf), start, end)
        out.append(Message(0, code, 0, token, options, payload))
        del buf[:end]
    return out


class TlsCoapListener:
    """Accepts TCP connections on 127.0.0.1:<ephemeral>, one TlsServerConnection each."""

    def __init__(self, tls: TlsServer) -> None:
        self.tls = tls
        self.events: list[Event] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TlsCoapListener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()
        self.tls.close()

    def _record(self, events: list[Event]) -> None:
        self.events += events
        if events:
            self._changed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        loop = asyncio.get_running_loop()
        conn = self.tls.accept(writer.get_extra_info("peername"), loop.time())
        stream = bytearray()
        try:
            while not conn.closed:
                data = await reader.read(65536)
                events = conn.receive_data(data, loop.time()) if data else conn.receive_eof()
                self._record(events)
                for event in events:
                    if isinstance(event, HandshakeCompleted):
                        conn.send(encode_frame(Message(0, CSM)))
                    elif isinstance(event, ApplicationData):
                        stream += event.data
                        for request in decode_frames(stream):
                            if request.code == Code.PING:
                                conn.send(encode_frame(Message(0, Code.PONG, token=request.token)))
                            answer = coap_answer(request)
                            if answer is not None:
                                conn.send(encode_frame(answer))
                writer.write(conn.outgoing())
                await writer.drain()
                if not data:
                    break
        finally:
            self._tasks.discard(task)
            conn.close()
            with contextlib.suppress(OSError):
                writer.write(conn.outgoing())
                writer.close()

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


class TlsCoapClient:
    """A TlsClientConnection over one asyncio TCP connection."""

    def __init__(self, conn: TlsClientConnection, port: int) -> None:
        self.conn = conn
        self.port = port
        self.events: list[Event] = []
        self._stream = bytearray()
        self.messages: list[Message] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> TlsCoapClient:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._writer is not None
        self.conn.close()
        with contextlib.suppress(OSError):
            self._writer.write(self.conn.outgoing())
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _flush(self) -> None:
        assert self._writer is not None
        out = self.conn.outgoing()
        if out:
            self._writer.write(out)
            await self._writer.drain()

    async def _read_until(self, done: Any, timeout: float) -> None:
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not done():
                await self._flush()
                data = await self._reader.read(65536)
                events = (self.conn.receive_data(data, loop.time()) if data
                          else self.conn.receive_eof())
                self.events += events
                for event in events:
                    if isinstance(event, ApplicationData):
                        self._stream += event.data
                        self.messages += decode_frames(self._stream)
                await self._flush()
                if not data:
                    break

    async def handshake(self, timeout: float = 5.0) -> Event:
        loop = asyncio.get_running_loop()
        self.events += self.conn.start(loop.time())
        await self._flush()

        def finished() -> bool:
            return any(isinstance(e, HandshakeCompleted | SessionClosed) for e in self.events)

        await self._read_until(finished, timeout)
        return next(e for e in self.events if isinstance(e, HandshakeCompleted | SessionClosed))

    async def request(self, msg: Message, timeout: float = 5.0) -> Message:
        msg.token = msg.token or os.urandom(4)
        if not any(m.code == CSM for m in self.messages):
            self.conn.send(encode_frame(Message(0, CSM)))
        self.conn.send(encode_frame(msg))

        def answered() -> bool:
            if any(isinstance(e, SessionClosed) for e in self.events):
                raise ConnectionError("connection closed")
            return any(m.token == msg.token for m in self.messages)

        await self._read_until(answered, timeout)
        return next(m for m in self.messages if m.token == msg.token)
