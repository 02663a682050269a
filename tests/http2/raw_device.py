"""A bare HTTP/2 peer for the tests, on the h2 library and asyncio streams: it sends what
a test says, byte for byte, and shows everything that comes back (statuses, data as it
arrives, trailers, resets, GOAWAY)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
from h2.errors import ErrorCodes

from aiolwm2m.http2.envelope import DownlinkRequest, EnvelopeReader


@dataclass
class StreamState:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    trailers: dict[str, str] = field(default_factory=dict)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    head: asyncio.Event = field(default_factory=asyncio.Event)
    data: asyncio.Event = field(default_factory=asyncio.Event)
    reset: int | None = None


class RawH2:
    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.streams: dict[int, StreamState] = {}
        self.closed = asyncio.Event()
        self.goaway: int | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.envelopes = EnvelopeReader()

    @classmethod
    async def open(cls, host: str, port: int, local: str | None = None) -> RawH2:
        self = cls()
        self._reader, self._writer = await asyncio.open_connection(
            host, port, local_addr=(local, 0) if local else None)
        self.conn.initiate_connection()
        self.flush()
        self._task = asyncio.create_task(self._read())
        return self

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._writer is not None
        sock = self._writer.get_extra_info("sockname")
        return str(sock[0]), int(sock[1])

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    self._event(event)
                self.flush()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()
            for state in self.streams.values():
                state.ended.set()
                state.head.set()
                state.data.set()

    def _event(self, event: h2.events.Event) -> None:
        sid = getattr(event, "stream_id", 0)
        state = self.streams.get(sid)
        if isinstance(event, h2.events.ResponseReceived) and state is not None:
            for k, v in event.headers:
                key, val = k.decode(), v.decode()
                if key == ":status":
                    state.status = int(val)
                else:
                    state.headers[key] = val
            state.head.set()
        elif isinstance(event, h2.events.DataReceived) and state is not None:
            state.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            state.data.set()
        elif isinstance(event, h2.events.TrailersReceived) and state is not None:
            state.trailers = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h2.events.StreamEnded) and state is not None:
            state.ended.set()
        elif isinstance(event, h2.events.StreamReset) and state is not None:
            state.reset = event.error_code
            state.ended.set()
            state.head.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event.error_code

    def request(self, method: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = StreamState()
        head = [(":method", method), (":scheme", "http"), (":authority", "lwm2m"),
                (":path", path), *(headers or [])]
        self.conn.send_headers(sid, head, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    async def exchange(self, method: str, path: str,
                       headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                       timeout: float = 5.0) -> StreamState:
        sid = self.request(method, path, headers, body)
        state = self.streams[sid]
        await asyncio.wait_for(state.ended.wait(), timeout)
        return state

    async def downlink(self, location: str, headers: list[tuple[str, str]] | None = None,
                       timeout: float = 5.0) -> int:
        sid = self.request("GET", f"{location}/requests", headers)
        await asyncio.wait_for(self.streams[sid].head.wait(), timeout)
        return sid

    async def next_requests(self, sid: int, timeout: float = 5.0) -> list[DownlinkRequest]:
        """The next envelope's requests on downlink stream ``sid``."""
        state = self.streams[sid]
        async with asyncio.timeout(timeout):
            while True:
                data = bytes(state.body)
                state.body.clear()
                found = self.envelopes.feed(data)
                if found:
                    return found[0]
                state.data.clear()
                await state.data.wait()

    def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid, ErrorCodes.CANCEL)
        self.flush()

    def abort(self) -> None:
        """Drop the connection at once (a broken link, not an orderly close)."""
        if self._writer is not None:
            self._writer.transport.abort()

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self.conn.close_connection()
                self.flush()
            self._writer.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 2)


def register_headers(mid: str | None = None) -> list[tuple[str, str]]:
    headers = [("content-type", "application/link-format")]
    if mid is not None:
        headers.append(("lwm2m-message-id", mid))
    return headers
