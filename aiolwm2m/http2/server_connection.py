"""One accepted HTTP/2 connection on asyncio: socket bytes (through TLS for https) to and
from a :class:`~.server_core.ServerCore`, and its events to the endpoint.

Back-pressure as on the CoAP-over-TCP links: once the peer leaves ``write_high_water`` bytes
unread, reading from it stops (no new requests) until it drains; past
``write_buffer_limit`` it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from aiolwm2m.transport.tcp_link import peer_key

from .server_core import (
    ConnectionOver,
    RequestReady,
    ServerCore,
    StreamGone,
    UploadEnded,
    UploadItems,
)

if TYPE_CHECKING:
    from aiolwm2m.transport.tls import TlsStream

    from .downlink import Downlink
    from .server_endpoint import AnswerStream, Http2Endpoint

log = logging.getLogger(__name__)


class H2Peer(tuple[str, int]):
    """A peer's ``(host, port)`` that also names its connection (None once it closed). It
    equals and hashes as the plain tuple, so code that only knows addresses takes it as one.
    Requests carry it as their ``remote``; a registration's address may be a plain copy
    (the compiled registry makes one), so find its connection with
    :meth:`~.server_endpoint.Http2Endpoint.connection_at`."""

    conn: Http2ServerConnection | None

    def __new__(cls, host: str, port: int, conn: Http2ServerConnection | None) -> H2Peer:
        self = super().__new__(cls, (host, port))
        self.conn = conn
        return self

    def __repr__(self) -> str:
        return f"({self[0]!r}, {self[1]})"


_NO_PEER = H2Peer("", 0, None)


class Http2ServerConnection(asyncio.Protocol):
    __slots__ = ("admitted", "answer_streams", "authorized", "closing", "core", "downlinks",
                 "endpoint", "flush_due", "identity", "last_active", "peer", "probe",
                 "started", "tls", "transport", "write_paused")

    def __init__(self, endpoint: Http2Endpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.core: ServerCore | None = None
        self.tls: TlsStream | None = None
        self.peer = _NO_PEER
        self.closing = False
        self.write_paused = False
        self.flush_due = False
        self.admitted = False
        self.probe = False
        self.started = 0.0
        self.last_active = 0.0
        #: The principal authenticated by TLS or a bearer token (None: NoSec).
        self.identity: str | None = None
        #: Registration ids this connection proved it may act for (downlink, answers).
        self.authorized: set[str] = set()
        #: Downlink streams open on this connection (made on first use).
        self.downlinks: dict[int, Downlink] | None = None
        #: Answer streams open on this connection (made on first use).
        self.answer_streams: dict[int, AnswerStream] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance checks.
        self.transport = stream = cast(asyncio.Transport, transport)
        ep = self.endpoint
        try:
            peername = stream.get_extra_info("peername")
            host, port = peer_key(peername) if peername else ("", 0)
            self.peer = H2Peer(host, port, self)
            now = self.started = self.last_active = ep.loop.time()
            if not ep.connection_made(self):
                self.closing = True
                stream.abort()
                return
            stream.set_write_buffer_limits(high=ep.write_high_water)
            if ep.tls_server is not None:
                self.tls = ep.tls_server.accept(self.peer, now)
                self._write_raw(self.tls.outgoing())
                return
            self._open(now)
        except Exception:
            ep.throttle.log(logging.ERROR, "connection-made",
                            "setting up the HTTP/2 connection with %r failed", self.peer,
                            exc_info=True)
            self.closing = True
            stream.abort()

    def _open(self, now: float) -> None:
        ep = self.endpoint
        if self.tls is not None:
            alpn = self.tls.alpn
            if alpn is not None and alpn != "h2":
                self.abandon(f"ALPN {alpn!r} is not h2", "http2-alpn")
                return
            identity = self.tls.identity
            self.identity = identity.key if identity is not None else None
        # Our SETTINGS wait for the client's first bytes: if those are an HTTP/1.x request,
        # it gets a plain-text refusal rather than binary frames it cannot read.
        self.core = ServerCore(ep.limits, now, ep.is_upload)

    def data_received(self, data: bytes) -> None:
        ep = self.endpoint
        now = self.last_active = ep.loop.time()
        tls = self.tls
        if tls is not None:
            data = tls.receive(data, now)
            if self.core is None:
                if not tls.established:
                    self._write_raw(tls.outgoing())
                    if tls.failure is not None:
                        self.abandon(tls.failure, None)
                    return
                self._open(now)
                if self.core is None:
                    return
            if tls.failure is not None and not data:
                self.abandon(tls.failure, None)
                return
        core = self.core
        if core is None or not data:
            return
        for event in core.receive(data, now):
            kind = type(event)
            if kind is RequestReady:
                assert isinstance(event, RequestReady)
                ep.request_ready(self, event.request)
            elif kind is UploadItems:
                assert isinstance(event, UploadItems)
                ep.answer_items(self, event.stream_id, event.items)
            elif kind is StreamGone:
                assert isinstance(event, StreamGone)
                ep.stream_gone(self, event.stream_id)
            elif kind is UploadEnded:
                assert isinstance(event, UploadEnded)
                ep.answers_ended(self, event.stream_id, event.error)
            else:
                assert isinstance(event, ConnectionOver)
                if event.refused is not None:
                    ep.refuse(event.refused, self, event.reason)
        self.flush()

    def eof_received(self) -> bool | None:
        if self.tls is not None:
            self.tls.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closing and self.peer.conn is None:
            return
        self.closing = True
        core = self.core
        if core is not None and core.closed:
            reason = core.close_reason
        elif self.tls is not None and self.tls.failure is not None:
            reason = self.tls.failure
        else:
            reason = f"connection lost: {exc}" if exc else "closed by the peer"
        if self.tls is not None and not self.tls.closed:
            self.tls.close()
        self.endpoint.connection_closed(self, reason)
        self.peer.conn = None

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # -- used by the endpoint -------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closing and self.core is not None and not self.core.closed

    def flush_soon(self) -> None:
        """Write one loop iteration later: the answers of a batch of requests (a group
        commit releases hundreds) leave in one send instead of one each, and so does the
        204 to a device's answer with the next request for it, which the code awaiting that
        answer usually issues at once (one wake-up of the device instead of two)."""
        if not self.flush_due:
            self.flush_due = True
            self.endpoint.loop.call_soon(self._flush_next)

    def _flush_next(self) -> None:
        if self.flush_due:
            self.endpoint.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_due = False
        core = self.core
        if core is None:
            return
        data = core.data_to_send()
        if data:
            if self.tls is not None:
                self.tls.send(data)
                data = self.tls.outgoing()
            self._write_raw(data)
        if core.closed and not self.closing:
            self._shutdown()

    def _write_raw(self, data: bytes) -> None:
        transport = self.transport
        if not data or transport is None or self.closing:
            return
        transport.write(data)
        limit = self.endpoint.write_buffer_limit
        if transport.get_write_buffer_size() > limit:
            self.endpoint.throttle.info("unread", "dropping HTTP/2 connection from %r: "
                                        "over %d bytes unread", self.peer, limit)
            self.closing = True
            self.endpoint.connection_closed(self, f"peer does not read (over {limit} "
                                                  "bytes unsent)")
            self.peer.conn = None
            transport.abort()

    def _shutdown(self) -> None:
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if self.tls is not None and not self.tls.closed:
            self.tls.close()
            closing = self.tls.outgoing()
            if closing:
                transport.write(closing)
        transport.close()

    def goaway(self, reason: str) -> None:
        """Close in order: GOAWAY, then the socket once it is written."""
        if self.core is not None and not self.core.closed:
            self.core.goaway(0, reason)
            self.flush()
        elif not self.closing:
            self._shutdown()

    def abandon(self, reason: str, refused: str | None) -> None:
        """Close a connection on which HTTP/2 never started (TLS failure, wrong ALPN)."""
        if refused is not None:
            self.endpoint.refuse(refused, self, reason)
        elif not self.probe:
            self.endpoint.throttle.info("tls-failed", "https connection from %r failed: %s",
                                        self.peer, reason)
        if self.tls is not None and self.tls.failure is None:
            self.tls.failure = reason
        if self.transport is not None and not self.closing:
            self._write_raw(self.tls.outgoing() if self.tls is not None else b"")
            self.closing = True
            self.transport.close()

    def handshake_overdue(self, now: float) -> bool:
        limit = self.endpoint.stream_limits.handshake_timeout
        return (self.tls is not None and self.core is None and limit is not None
                and now - self.started >= limit)
