"""The server's requests to one device over HTTP/2: its downlink stream and what is in flight.

A registered device opens ``GET /rd/{id}/requests`` and keeps it open; while it is open the
device is present (awake). The server writes each request as an envelope on it (requests
issued in the same loop iteration go as one batch) and waits for the device to answer it,
``POST /rd/{id}/responses/{identity}``, on a stream of its own. Requests outlive the stream
they were written on: when the device comes back with a new downlink stream (after a broken
connection, say), what it never answered is written again, once, with the same identity, so
that the device, which remembers the identities it carried out, answers without executing
it twice. A second downlink stream for the same registration replaces the first, which is
ended with the reason in a trailer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange
from aiolwm2m.coap.tcp_connection import ConnectionLost

from .envelope import MAX_BATCH, DownlinkRequest, encode_envelope
from .messages import downlink_request

if TYPE_CHECKING:
    from .server_connection import Http2ServerConnection

#: A request is written at most this often (the first time, and once after a reconnect).
MAX_ATTEMPTS: Final = 2
CLOSED_TRAILER: Final = "lwm2m-closed"


class Pending:
    """A request written (or to be written) to a device, until its answer."""

    __slots__ = ("attempts", "downlink", "exchange", "future", "message", "sink", "wire")

    def __init__(self, downlink: Downlink, message: Message,
                 future: asyncio.Future[Message] | None, sink: Any) -> None:
        self.downlink = downlink
        self.message = message
        self.wire: DownlinkRequest = downlink_request(message)
        self.future = future
        #: An observation's ResponseSink (gets the first answer, then the notifications).
        self.sink = sink
        self.exchange: Exchange | None = None
        self.attempts = 0

    def fail(self, error: BaseException) -> None:
        if self.future is not None:
            if not self.future.done():
                self.future.set_exception(error)
        elif self.sink is not None:
            self.sink.on_error(error)


class Downlink:
    """One registration's downlink: the stream it is on now (if any), and its requests."""

    __slots__ = ("_outbox", "_scheduled", "backlog", "conn", "loop", "registration_id",
                 "stream_id", "unanswered")

    def __init__(self, registration_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.registration_id = registration_id
        self.loop = loop
        self.conn: Http2ServerConnection | None = None
        self.stream_id = 0
        #: Written and not yet answered, by token, in the order they were sent.
        self.unanswered: dict[bytes, Pending] = {}
        self._outbox: list[DownlinkRequest] = []
        #: Payload bytes waiting in the outbox for this loop iteration's envelope.
        self.backlog = 0
        self._scheduled = False

    @property
    def open(self) -> bool:
        return self.conn is not None

    def attach(self, conn: Http2ServerConnection, stream_id: int) -> None:
        """A new downlink stream: what was never answered goes out again (once)."""
        self.conn = conn
        self.stream_id = stream_id
        for token, pending in list(self.unanswered.items()):
            if pending.attempts >= MAX_ATTEMPTS:
                del self.unanswered[token]
                pending.fail(ConnectionLost("the device's downlink stream ended twice "
                                            "before it answered"))
                continue
            self._send(pending)

    def detach(self) -> None:
        self.conn = None
        self.stream_id = 0
        self._outbox.clear()
        self.backlog = 0

    def send(self, pending: Pending) -> None:
        """Write ``pending`` now, or (no stream open yet) when the device opens one."""
        self.unanswered[pending.message.token] = pending
        if self.conn is not None:
            self._send(pending)

    def _send(self, pending: Pending) -> None:
        pending.attempts += 1
        self._outbox.append(pending.wire)
        self.backlog += len(pending.wire.payload)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self.backlog = 0
        conn = self.conn
        outbox = self._outbox
        if conn is None or conn.core is None or not outbox:
            outbox.clear()
            return
        data = b"".join(encode_envelope(outbox[i:i + MAX_BATCH])
                        for i in range(0, len(outbox), MAX_BATCH))
        outbox.clear()
        conn.core.write(self.stream_id, data)
        conn.flush()

    def answered(self, token: bytes) -> Pending | None:
        return self.unanswered.pop(token, None)

    def close_stream(self, reason: str) -> None:
        """End the current stream (if any) with ``reason`` in its trailer."""
        conn = self.conn
        if conn is not None and conn.core is not None:
            conn.core.finish(self.stream_id, [(CLOSED_TRAILER, reason)])
            conn.flush()
        self.detach()

    def fail_all(self, error: BaseException) -> None:
        pending = list(self.unanswered.values())
        self.unanswered.clear()
        for p in pending:
            p.fail(error)
