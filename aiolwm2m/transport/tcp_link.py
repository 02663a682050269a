"""One CoAP-over-TCP/TLS connection on asyncio: the link between a socket and a
:class:`~aiolwm2m.coap.tcp_connection.TcpConnection`.

The link moves bytes (through TLS for coaps+tcp), hands requests to its endpoint's
dispatcher, delivers responses and connection events, and applies back-pressure: once the
peer's unsent bytes pass the endpoint's ``write_high_water`` it stops reading from that peer,
holds back its notifications (the latest per observation) and makes our requests to it wait;
past ``write_buffer_limit`` the connection is dropped. It also enforces its endpoint's
:class:`~.stream_limits.StreamLimits` on the connection: the TLS handshake deadline, and for
accepted connections the idle timeout of those that carry no registration. What it needs
from its endpoint is the :class:`LinkOwner` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, Protocol, cast

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import ExchangeFailed, ResponseReceived
from aiolwm2m.coap.tcp_connection import (
    ConnectionLost,
    ConnectionState,
    CsmReceived,
    ReleaseReceived,
    TcpConnection,
    TcpParameters,
)

from .dispatch import RequestDispatcher
from .tcp_events import Connected, ConnectionEvents

if TYPE_CHECKING:
    from aiolwm2m.log_throttle import LogThrottle

    from .stream_limits import StreamLimits
    from .tls import TlsStream

Address = tuple[Any, ...]
PeerKey = tuple[str, int]


class LinkOwner(Protocol):
    """What a link uses of the endpoint that owns it."""

    loop: asyncio.AbstractEventLoop
    params: TcpParameters
    scheme: str
    dispatcher: RequestDispatcher
    events: ConnectionEvents
    write_high_water: int
    write_buffer_limit: int
    read_view: memoryview
    limits: StreamLimits
    #: For what a peer can make happen per connection (failed handshakes, idle closes).
    throttle: LogThrottle

    @property
    def secure(self) -> bool:
        """coaps+tcp: every link runs TLS (see :meth:`tls_for`)."""
        ...

    def tls_for(self, link: TcpLink, now: float) -> TlsStream: ...

    def link_made(self, link: TcpLink) -> bool:
        """The TCP connection exists (CoAP may not have started yet). False: refused (a
        connection cap is reached); the link closes it at once."""

    def keeps_idle(self, link: TcpLink) -> bool:
        """Whether an accepted connection idle past ``limits.unbound_idle_timeout`` stays
        open (it carries a registration)."""

    def link_opened(self, link: TcpLink) -> None:
        """CoAP started: the link can carry requests to its peer."""

    def link_unusable(self, link: TcpLink) -> None:
        """No new requests over this link (released, closing)."""

    def link_released(self, link: TcpLink, hold_off: int | None) -> None: ...

    def link_closed(self, link: TcpLink, reason: str) -> None: ...

    def schedule(self, link: TcpLink) -> None:
        """Call ``link.on_timer`` at ``link.next_deadline()``."""


def peer_key(address: Address) -> PeerKey:
    """``(host, port)`` of a socket address; IPv4-mapped IPv6 hosts become plain IPv4."""
    host = str(address[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(address[1])


class StreamPeer(tuple[str, int]):
    """A peer's ``(host, port)`` that also names the connection a message arrived on.

    It equals (and hashes as) the plain tuple, so it works as a dictionary key for code that
    only knows the address; ``link`` becomes None once the connection is gone.
    """

    link: TcpLink | None

    def __new__(cls, host: str, port: int, link: TcpLink | None) -> StreamPeer:
        self = super().__new__(cls, (host, port))
        self.link = link
        return self

    def __repr__(self) -> str:
        return f"({self[0]!r}, {self[1]})"


# Until connection_made tells the address (shared: never given a link).
_NO_PEER = StreamPeer("", 0, None)


class TcpLink(asyncio.BufferedProtocol):
    """One TCP connection: bytes in and out, TLS if any, timers and back-pressure.

    Reads land in the endpoint's one shared buffer (asyncio fills it and calls
    ``buffer_updated`` before the next read of any connection), so a read costs a copy of
    the bytes received instead of a fresh 256 KiB allocation as with ``Protocol``.
    """

    __slots__ = ("_backlog", "_csm_waiters", "_held", "_write_waiters", "admitted", "closed",
                 "closing", "conn", "dial_key", "endpoint", "idle_checked", "in_batch", "keys",
                 "now", "outgoing", "peer", "probe", "ready", "scheduled", "started", "tls",
                 "transport", "write_paused")

    def __init__(self, endpoint: LinkOwner, outgoing: bool, dial_key: PeerKey | None = None
                 ) -> None:
        self.endpoint = endpoint
        self.outgoing = outgoing
        self.dial_key = dial_key
        self.transport: asyncio.Transport | None = None
        self.conn: TcpConnection | None = None
        self.tls: TlsStream | None = None
        self.peer = _NO_PEER
        self.keys: list[PeerKey] = []
        self.closed = False
        self.closing = False
        self.in_batch = False
        self.now = 0.0
        self.write_paused = False
        self.scheduled = math.inf
        # Counted in the endpoint's ConnectionQuota (released when the connection ends).
        self.admitted = False
        # The endpoint's own start-up check: no events, not counted, not logged.
        self.probe = False
        self.started = 0.0  # when the TCP connection was made
        # When the endpoint last found this idle connection worth keeping.
        self.idle_checked = 0.0
        self.ready: asyncio.Future[None] | None = (
            endpoint.loop.create_future() if outgoing else None)
        self._held: dict[bytes, Message] | None = None
        self._backlog: list[Message] | None = None
        self._write_waiters: list[asyncio.Future[None]] | None = None
        self._csm_waiters: list[asyncio.Future[None]] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass, though it has every
        # method of one: no isinstance check here (it once reset every connection).
        self.transport = stream = cast(asyncio.Transport, transport)
        ep = self.endpoint
        try:
            peername = stream.get_extra_info("peername")
            host, port = peer_key(peername) if peername else ("", 0)
            self.peer = StreamPeer(host, port, self)
            now = self.started = ep.loop.time()
            if not ep.link_made(self):
                self.closing = True
                stream.abort()
                return
            stream.set_write_buffer_limits(high=ep.write_high_water)
            if not ep.secure:
                self._open(now)
                return
            try:
                self.tls = ep.tls_for(self, now)
            except Exception as e:  # bad credentials surface here, per connection
                ep.throttle.warning("tls-setup", "TLS setup for %r failed: %s", self.peer, e)
                self._abandon(f"TLS setup failed: {e}")
                return
            self._write_raw(self.tls.outgoing())
            ep.schedule(self)
        except Exception:
            # A defect must not turn each connection attempt into a traceback in the log.
            ep.throttle.log(logging.ERROR, "connection-made",
                            "setting up the connection with %r failed", self.peer,
                            exc_info=True)
            self.closing = True
            stream.abort()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.endpoint.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.endpoint.read_view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        ep = self.endpoint
        now = ep.loop.time()
        tls = self.tls
        if tls is not None:
            data = tls.receive(data, now)
            if self.conn is None:
                if not tls.established:
                    self._write_raw(tls.outgoing())
                    if tls.failure is not None:
                        self._abandon(tls.failure)
                    return
                self._open(now)
        conn = self.conn
        if conn is None:
            return
        if data:
            requests = conn.receive_data(data, now)
            if requests:
                self._serve(conn, requests, now)
        if tls is not None and tls.failure is not None:
            conn.connection_lost(tls.failure)
        self.flush()

    def _serve(self, conn: TcpConnection, requests: list[Message], now: float) -> None:
        """Hand ``requests`` to the dispatcher; their responses are written together after
        the batch, unless they pile up past the high-water mark: then they are written out
        at once and, if that backs the transport up, the rest of the batch waits for
        :meth:`resume_writing` (reading is paused meanwhile, so the wait list is bounded
        by one read)."""
        handle = self.endpoint.dispatcher.handle
        high = self.endpoint.write_high_water
        self.in_batch = True
        self.now = now
        try:
            for i, request in enumerate(requests):
                if self.write_paused:
                    self._backlog = requests[i:]
                    return
                handle(request, now)
                if conn.outbox_bytes > high:
                    self._write_out(conn)
        finally:
            self.in_batch = False

    def eof_received(self) -> bool | None:
        if self.tls is not None:
            self.tls.receive_eof()
        return None  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = self.closing = True
        conn, tls = self.conn, self.tls
        if conn is not None and conn.closed:
            reason = conn.close_reason
        elif tls is not None and tls.failure is not None:
            reason = tls.failure
        else:
            reason = f"connection lost: {exc}" if exc else "closed by the peer"
        if conn is not None:
            conn.connection_lost(reason)
            if conn.events:
                self._process_events(conn)
        if tls is not None and not tls.closed:
            tls.close()
        self.endpoint.link_closed(self, reason)
        if self.peer.link is self:
            self.peer.link = None
        error = ConnectionLost(f"connection to {self.peer!r} ended: {reason}")
        for waiters in (self._write_waiters, self._csm_waiters):
            for fut in waiters or ():
                if not fut.done():
                    fut.set_exception(error)
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved here: the dialler may have given up already

    def pause_writing(self) -> None:
        # The peer is not reading: stop reading its requests until it catches up.
        self.write_paused = True
        if self.transport is not None and not self.closing:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is None or self.closing:
            return
        backlog, self._backlog = self._backlog, None
        if backlog and self.conn is not None:
            self._serve(self.conn, backlog, self.endpoint.loop.time())
            self.flush()
            if self.write_paused or self.closing:
                return
        self.transport.resume_reading()
        held, self._held = self._held, None
        if held and self.conn is not None:
            now = self.endpoint.loop.time()
            for note in held.values():
                self.conn.send_notification(note, now)
            self.flush()
        waiters, self._write_waiters = self._write_waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    # -- plumbing -------------------------------------------------------------------------

    def _open(self, now: float) -> None:
        """Start CoAP on the connection (after the TLS handshake for coaps+tcp)."""
        ep = self.endpoint
        self.conn = TcpConnection(self.peer, now, ep.params)
        ep.link_opened(self)
        if ep.events and not self.probe:
            ep.events.emit(Connected(self.peer, ep.scheme, self.outgoing,
                                     self.tls.identity if self.tls is not None else None))
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)
        self.flush()
        ep.schedule(self)

    def flush(self) -> None:
        """Write what the connection queued, deliver its events, close when it ended."""
        conn = self.conn
        if conn is None:
            return
        if conn.outbox:
            self._write_out(conn)
        if conn.events:
            self._process_events(conn)
            if conn.outbox:
                self._write_out(conn)
        if conn.state is ConnectionState.CLOSED:
            if not self.closing:
                self._shutdown()
        elif conn.timers_changed:
            conn.timers_changed = False
            self.endpoint.schedule(self)

    def _write_out(self, conn: TcpConnection) -> None:
        out = conn.outbox
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        conn.outbox_bytes = 0
        if self.closing:
            return
        if self.tls is not None:
            self.tls.send(data)
            data = self.tls.outgoing()
        self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        transport = self.transport
        if not data or transport is None or self.closing:
            return
        transport.write(data)
        limit = self.endpoint.write_buffer_limit
        if transport.get_write_buffer_size() > limit:
            # Reading stopped long ago and the peer still does not drain: give up on it.
            reason = f"peer does not read (over {limit} bytes unsent)"
            if self.conn is not None:
                self.conn.connection_lost(reason)
                self._process_events(self.conn)
            self.closing = True
            self.endpoint.link_unusable(self)
            transport.abort()

    def _process_events(self, conn: TcpConnection) -> None:
        events = conn.events
        conn.events = []
        emitter = self.endpoint.events
        for ev in events:
            kind = type(ev)
            if kind is ResponseReceived:
                assert isinstance(ev, ResponseReceived)
                user = ev.exchange.user
                if isinstance(user, asyncio.Future):
                    if not user.done():
                        user.set_result(ev.response)
                elif user is not None:
                    user.on_response(ev.response)
            elif kind is ExchangeFailed:
                assert isinstance(ev, ExchangeFailed)
                user = ev.exchange.user
                if isinstance(user, asyncio.Future):
                    if not user.done():
                        user.set_exception(ev.error)
                elif user is not None:
                    user.on_error(ev.error)
            else:
                if kind is CsmReceived:
                    waiters, self._csm_waiters = self._csm_waiters, None
                    for fut in waiters or ():
                        if not fut.done():
                            fut.set_result(None)
                elif kind is ReleaseReceived:
                    assert isinstance(ev, ReleaseReceived)
                    self.endpoint.link_released(self, ev.release.hold_off)
                if emitter and not self.probe:
                    emitter.emit(ev)  # type: ignore[arg-type]

    def _shutdown(self, at_once: bool = False) -> None:
        """Close after writing what is queued; with ``at_once``, drop what the peer has not
        read yet rather than wait for it (a peer that neither sends nor reads would keep the
        descriptor for as long as it likes)."""
        self.closing = True
        self.endpoint.link_unusable(self)
        transport = self.transport
        if transport is None:
            return
        if self.tls is not None and not self.tls.closed:
            self.tls.close()
            closing_bytes = self.tls.outgoing()
            if closing_bytes:
                transport.write(closing_bytes)
        transport.close()
        if at_once and transport.get_write_buffer_size():
            transport.abort()

    def _abandon(self, reason: str) -> None:
        """Close a connection on which CoAP never started (TLS handshake failure)."""
        if not self.probe:
            self.endpoint.throttle.info("tls-failed", "coaps+tcp connection from %r failed: %s",
                                        self.peer, reason)
        if self.tls is not None and self.tls.failure is None:
            self.tls.failure = reason
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # -- used by the endpoint -------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return (not self.closing and self.conn is not None
                and self.conn.state is ConnectionState.OPEN)

    def next_deadline(self) -> float | None:
        if self.closing:
            return None  # a past deadline here would have the timer loop call us forever
        conn = self.conn
        if conn is not None:
            deadline = conn.next_deadline()
            idle = self._idle_deadline(conn)
            if idle is not None and (deadline is None or idle < deadline):
                return idle
            return deadline
        if self.tls is None:
            return None
        deadline = self.tls.next_deadline()
        limit = None if self.outgoing else self.endpoint.limits.handshake_timeout
        if limit is not None and (deadline is None or self.started + limit < deadline):
            return self.started + limit
        return deadline

    def _idle_deadline(self, conn: TcpConnection) -> float | None:
        """When this accepted connection has been silent too long (unless it is kept)."""
        timeout = self.endpoint.limits.unbound_idle_timeout
        if (timeout is None or self.outgoing or self.probe
                or conn.state is not ConnectionState.OPEN):
            return None
        return max(conn.last_received, self.idle_checked) + timeout

    def on_timer(self, now: float) -> None:
        if self.closing:
            return
        conn = self.conn
        if conn is not None:
            conn.handle_timers(now)
            idle = self._idle_deadline(conn)
            if idle is not None and now >= idle:
                if self.endpoint.keeps_idle(self):
                    self.idle_checked = now
                else:
                    self._close_idle(conn, now)
                    return
            self.flush()
        elif self.tls is not None:
            limit = None if self.outgoing else self.endpoint.limits.handshake_timeout
            if limit is not None and now >= self.started + limit:
                self._abandon(f"TLS handshake not completed within {limit:g}s")
                return
            self.tls.handle_timeout(now)
            self._write_raw(self.tls.outgoing())
            if self.tls.failure is not None:
                self._abandon(self.tls.failure)

    def _close_idle(self, conn: TcpConnection, now: float) -> None:
        timeout = self.endpoint.limits.unbound_idle_timeout
        reason = f"idle for {timeout:g}s without a registration"
        self.endpoint.throttle.info("idle", "closing the connection from %r: %s", self.peer,
                                    reason)
        conn.release(now, reason)
        conn.connection_lost(reason)
        if conn.outbox:
            self._write_out(conn)
        if conn.events:
            self._process_events(conn)
        self._shutdown(at_once=True)

    def hold(self, notification: Message) -> None:
        """Keep only the newest notification per observation while writes are backed up."""
        if self._held is None:
            self._held = {}
        self._held[notification.token] = notification

    async def writable(self) -> None:
        if not self.write_paused:
            return
        fut = self.endpoint.loop.create_future()
        if self._write_waiters is None:
            self._write_waiters = []
        self._write_waiters.append(fut)
        await fut

    async def peer_csm(self, timeout: float) -> None:
        """Wait (bounded) until the peer's CSM has arrived."""
        if self.conn is None or self.conn.csm_received:
            return
        fut = self.endpoint.loop.create_future()
        if self._csm_waiters is None:
            self._csm_waiters = []
        self._csm_waiters.append(fut)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, timeout)

    def close(self, reason: str, diagnostic: str) -> None:
        """Orderly local close: Release with ``diagnostic``, fail what is pending, close."""
        conn = self.conn
        if conn is None:
            self._abandon(reason)
            return
        if not conn.closed:
            conn.release(self.endpoint.loop.time(), diagnostic)
            conn.connection_lost(reason)
        self.flush()
