"""CoAP over TCP and TLS (RFC 8323) on asyncio: one endpoint, many connections.

A :class:`TcpEndpoint` serves its :class:`Site` on every connection it holds, accepted or
dialled (a LwM2M client answers the server's requests on the connection it opened), and sends
requests with the same API as :class:`~.udp.UdpEndpoint`. Requests to a peer reuse its
connection and dial one when there is none, unless the endpoint was made with ``dial=False``
(a server that only talks over connections its clients opened).

Peers are ``(host, port)`` tuples. The ``remote`` of every received message is a
:class:`~.tcp_link.StreamPeer`: such a tuple that also names the connection the message came
on, so that responses and notifications go back on that connection (RFC 8323 section 3.3)
even when a newer connection from the same address exists.

The protocol is the sans-IO :class:`~aiolwm2m.coap.tcp_connection.TcpConnection`; each
connection's bytes, TLS and back-pressure are its :class:`~.tcp_link.TcpLink`; the endpoint
routes requests to links, runs every link's timers from one heap (no timer object per idle
connection) and does block-wise transfers for its own requests.

What accepted connections may hold is bounded by the endpoint's
:class:`~.stream_limits.StreamLimits` (idle and handshake timeouts, connection caps); a
listener checks at start that it accepts connections (:meth:`TcpEndpoint.self_check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.block import BERT_SZX
from aiolwm2m.coap.errors import EndpointClosed
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange
from aiolwm2m.coap.observe import Observation, ObserverRegistry
from aiolwm2m.coap.peer_observers import PeerIndexedObserverRegistry
from aiolwm2m.coap.signals import BASE_MAX_MESSAGE_SIZE, BERT_UNIT, Capabilities
from aiolwm2m.coap.stream_blockwise import (
    StreamBlock1Assembler,
    StreamBlock1Sender,
    StreamBlock2Collector,
    StreamBlock2Server,
    bert_room,
    payload_room,
)
from aiolwm2m.coap.tcp_connection import (
    DEFAULT_TCP_PARAMETERS,
    ConnectionLost,
    TcpConnection,
    TcpParameters,
    new_token,
)
from aiolwm2m.coap.tcp_framing import frame_size
from aiolwm2m.log_throttle import LogThrottle

from .accept_errors import throttle_accept_errors
from .dispatch import RequestDispatcher
from .listener_probe import ListenerCheckFailed, loopback_for, probe_stream
from .listening import listening_address
from .site import Site
from .stream_limits import DEFAULT_STREAM_LIMITS, ConnectionQuota, StreamLimits
from .subscription import ResponseSink, Subscription
from .tcp_events import ConnectionEvents, Disconnected
from .tcp_link import Address, PeerKey, StreamPeer, TcpLink, peer_key
from .wakeup import Wakeup

if TYPE_CHECKING:
    from aiolwm2m.security import PeerIdentity

    from .tls import TlsClientSecurity, TlsServerSecurity, TlsStream

__all__ = ["StreamLimits", "StreamPeer", "TcpEndpoint", "TcpParameters", "peer_key"]

log = logging.getLogger(__name__)


class TcpEndpoint:
    """CoAP over TCP (``coap+tcp``) or, with TLS security, over TLS (``coaps+tcp``).

    ``keep_idle`` tells which accepted connections stay open however long they are silent
    (a server: those that carry a registration); ``on_refused(reason, peer)`` hears of every
    connection a cap of ``limits`` turned away (a server counts them as refusals); without
    it they are logged, a few per interval.
    """

    def __init__(self, *, site: Site | None = None,
                 params: TcpParameters = DEFAULT_TCP_PARAMETERS, dial: bool = True,
                 tls_server: TlsServerSecurity | None = None,
                 tls_client: TlsClientSecurity | Callable[[PeerKey], TlsClientSecurity]
                 | None = None,
                 observers: ObserverRegistry | None = None,
                 write_high_water: int = 64 * 1024, write_buffer_limit: int = 4 * 1024 * 1024,
                 connect_timeout: float = 10.0, read_buffer_size: int = 256 * 1024,
                 limits: StreamLimits = DEFAULT_STREAM_LIMITS,
                 keep_idle: Callable[[StreamPeer], bool] | None = None,
                 on_refused: Callable[[str, StreamPeer], None] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.params = params
        self.dial = dial
        self.tls_server = tls_server
        self.tls_client = tls_client
        self.scheme = "coaps+tcp" if self.secure else "coap+tcp"
        self.write_high_water = write_high_water
        self.write_buffer_limit = max(write_buffer_limit, 2 * write_high_water)
        self.connect_timeout = connect_timeout
        self.limits = limits
        self.keep_idle = keep_idle
        self.on_refused = on_refused
        self.quota = ConnectionQuota(limits)
        self.throttle = LogThrottle(log, interval=limits.log_interval)
        self.site = site if site is not None else Site()
        self.events = ConnectionEvents()
        self.dispatcher = RequestDispatcher(
            self.site, self, clock=self.loop.time, empty_ack_delay=None,  # TCP acknowledges
            observers=observers if observers is not None else PeerIndexedObserverRegistry())
        self.dispatcher.block1 = StreamBlock1Assembler(self._peer_limits)
        self.dispatcher.block2 = StreamBlock2Server(self._peer_limits)
        self.closed = False
        self.read_view = memoryview(bytearray(read_buffer_size))
        self._server: asyncio.Server | None = None
        self._routes: dict[PeerKey, TcpLink] = {}
        self._links_all: set[TcpLink] = set()
        self._dialing: dict[PeerKey, asyncio.Task[TcpLink]] = {}
        self._hold_off: dict[PeerKey, float] = {}
        # Local addresses of our own start-up probes (see self_check).
        self._probes: set[PeerKey] = set()
        self._timers: list[tuple[float, int, TcpLink]] = []
        self._timer_seq = 0
        self._wakeup = Wakeup(self.loop, self.loop.time, self._on_timer)

    @classmethod
    async def create(cls, host: str = "::", port: int = 0, *, listen: bool = True,
                     backlog: int = 1024, **kwargs: Any) -> TcpEndpoint:
        """An endpoint listening on ``host``/``port`` (``::`` takes IPv6 and IPv4), or with
        ``listen=False`` one that only dials out."""
        endpoint = cls(**kwargs)
        if listen:
            await endpoint._listen(host, port, backlog)
        return endpoint

    async def _listen(self, host: str, port: int, backlog: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        throttle_accept_errors(self.loop, self.limits.log_interval)
        self._server = await self.loop.create_server(lambda: TcpLink(self, False), sock=sock,
                                                     backlog=backlog)

    @property
    def port(self) -> int:
        address = listening_address(self._server)
        return int(address[1]) if address else 0

    @property
    def local_address(self) -> Address:
        return listening_address(self._server)

    # -- ServerTransport (used by the dispatcher) -----------------------------------------

    def send_response(self, request: Message, response: Message) -> None:
        link = getattr(request.remote, "link", None)
        if link is None or link.conn is None:
            return  # the connection is gone, and with it whoever asked
        link.conn.respond(request, response, link.now if link.in_batch else self.loop.time())
        if not link.in_batch:
            link.flush()

    def acknowledge(self, request: Message) -> None:
        """Nothing to do: TCP acknowledges (CoT-007)."""

    def send_notification(self, observation: Observation, notification: Message) -> None:
        link = getattr(observation.peer, "link", None)
        if link is None or link.conn is None or link.conn.closed:
            self.dispatcher.observer_lost(observation.peer, observation.token)
            return
        if link.write_paused:
            link.hold(notification)
            return
        link.conn.send_notification(notification, self.loop.time())
        if not link.in_batch:
            link.flush()

    # -- LinkOwner: what the links call ----------------------------------------------------

    @property
    def secure(self) -> bool:
        return self.tls_server is not None or self.tls_client is not None

    def link_made(self, link: TcpLink) -> bool:
        if not link.outgoing:
            if link.peer in self._probes:
                link.probe = True
            else:
                refusal = self.quota.admit(link.peer[0])
                if refusal is not None:
                    self._refuse(refusal, link.peer)
                    return False
                link.admitted = True
        self._links_all.add(link)
        return True

    def _refuse(self, reason: str, peer: StreamPeer) -> None:
        if self.on_refused is not None:
            self.on_refused(reason, peer)
            return
        limits = self.limits
        cap = (limits.max_connections if reason == "tcp-connection-limit"
               else limits.max_connections_per_address)
        self.throttle.warning(reason, "%s refused a connection from %s: %s reached (%s)",
                              self.scheme, peer[0], reason, cap)

    def keeps_idle(self, link: TcpLink) -> bool:
        return self.keep_idle is not None and self.keep_idle(link.peer)

    def tls_for(self, link: TcpLink, now: float) -> TlsStream:
        if not link.outgoing:
            assert self.tls_server is not None, "no TLS server credentials"
            return self.tls_server.accept(link.peer, now)
        security = self.tls_client
        if security is None:
            raise EndpointClosed("no TLS client credentials for outgoing connections")
        if callable(security):
            security = security(link.dial_key or peer_key(link.peer))
        return security.connect(link.peer, now)

    def link_opened(self, link: TcpLink) -> None:
        keys = [peer_key(link.peer)]
        if link.dial_key is not None and link.dial_key != keys[0]:
            keys.append(link.dial_key)
        link.keys = keys
        for key in keys:
            self._routes[key] = link

    def link_unusable(self, link: TcpLink) -> None:
        for key in link.keys:
            if self._routes.get(key) is link:
                del self._routes[key]

    def link_released(self, link: TcpLink, hold_off: int | None) -> None:
        self.link_unusable(link)
        if hold_off:
            for key in link.keys:
                self._hold_off[key] = self.loop.time() + hold_off

    def link_closed(self, link: TcpLink, reason: str) -> None:
        self.link_unusable(link)
        self._links_all.discard(link)
        if link.admitted:
            link.admitted = False
            self.quota.release(link.peer[0])
        if link.conn is not None:
            # Observations end with the connection that registered them (RFC 8323 7.1).
            self.dispatcher.observers.remove_peer(link.peer)
        if link.conn is not None and self.events and not link.probe:
            self.events.emit(Disconnected(link.peer, self.scheme, reason))

    def _peer_limits(self, remote: object) -> tuple[int, bool]:
        link = getattr(remote, "link", None)
        if link is None or link.conn is None:
            return BASE_MAX_MESSAGE_SIZE, False
        conn: TcpConnection = link.conn
        return conn.remote.max_message_size, conn.bert

    async def _link_for(self, remote: Address) -> TcpLink:
        if self.closed:
            raise EndpointClosed("endpoint is closed")
        link = getattr(remote, "link", None)
        if isinstance(link, TcpLink) and link.usable:
            return link
        key = peer_key(remote)
        found = self._routes.get(key)
        if found is not None and found.usable:
            return found
        if not self.dial:
            raise ConnectionLost(f"no connection with {key!r}")
        until = self._hold_off.get(key)
        if until is not None:
            if self.loop.time() < until:
                raise ConnectionLost(f"{key!r} asked us not to reconnect for now (Hold-Off)")
            del self._hold_off[key]
        task = self._dialing.get(key)
        if task is None:
            task = self.loop.create_task(self._dial(key))
            self._dialing[key] = task
            task.add_done_callback(lambda _t: self._dialing.pop(key, None))
        return await asyncio.shield(task)

    async def _dial(self, key: PeerKey) -> TcpLink:
        link = TcpLink(self, True, key)
        host, port = key
        try:
            await asyncio.wait_for(self.loop.create_connection(lambda: link, host, port),
                                   self.connect_timeout)
            assert link.ready is not None
            handshake = (self.connect_timeout if self.tls_client is None
                         else self.connect_timeout + 30.0)
            await asyncio.wait_for(asyncio.shield(link.ready), handshake)
        except (OSError, TimeoutError) as e:
            if link.transport is not None:
                link._abandon(f"connect failed: {e}")
            raise ConnectionLost(f"cannot connect to {host}:{port}: {e}") from e
        return link

    async def connect(self, remote: Address) -> StreamPeer:
        """Open (or reuse) the connection to ``remote``; returns its peer address."""
        return (await self._link_for(remote)).peer

    def connections(self) -> list[StreamPeer]:
        """Peers of the connections currently open."""
        return [link.peer for link in self._links_all if link.conn is not None
                and not link.closing and not link.probe]

    async def self_check(self, timeout: float = 5.0) -> None:
        """Connect to our own listener over loopback and check that the accept path works:
        a CSM is answered with a CSM (coap+tcp), a ClientHello with a TLS record
        (coaps+tcp). Raises ``ListenerCheckFailed``. The probe is not counted against the
        limits and emits no connection events."""
        address = self.local_address
        if not address:
            return
        failure: OSError | None = None
        for host in loopback_for(str(address[0])):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as e:
                failure = e
                continue
            key: PeerKey | None = None
            try:
                sock.setblocking(False)
                sock.bind((host, 0))  # our address is known before the server sees us
                key = peer_key(sock.getsockname())
                self._probes.add(key)
                await probe_stream(sock, (host, int(address[1])), self.secure, timeout)
                return
            except OSError as e:  # no such loopback address: try the next one
                failure = e
            finally:
                sock.close()
                if key is not None:
                    self._probes.discard(key)
        raise ListenerCheckFailed(f"cannot reach it over loopback: {failure}")

    def peer_capabilities(self, remote: Address) -> Capabilities | None:
        """The limits ``remote`` announced in its CSM (None: no connection or no CSM yet)."""
        link = self._find(remote)
        if link is None or link.conn is None or not link.conn.csm_received:
            return None
        return link.conn.remote

    def _find(self, remote: Address) -> TcpLink | None:
        link = getattr(remote, "link", None)
        if isinstance(link, TcpLink):
            return link
        return self._routes.get(peer_key(remote))

    # -- timers ---------------------------------------------------------------------------

    def schedule(self, link: TcpLink) -> None:
        """Make sure ``link`` gets a timer call at its next deadline. Deadlines that move
        later need no call here: the timer fires early, finds nothing due and reschedules."""
        if link.conn is not None:
            link.conn.timers_changed = False
        deadline = link.next_deadline()
        if deadline is None or deadline >= link.scheduled or link.closed:
            return
        link.scheduled = deadline
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, link))
        self._wakeup.at(deadline)

    def _on_timer(self) -> None:
        now = self.loop.time()
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, link = heapq.heappop(timers)
            if link.closed or link.scheduled != deadline:
                continue  # superseded by an earlier deadline, or gone
            link.scheduled = math.inf
            link.on_timer(now)
            self.schedule(link)
        if timers:
            self._wakeup.at(timers[0][0])

    # -- client API -----------------------------------------------------------------------

    def new_token(self) -> bytes:
        return new_token()

    def identity_of(self, remote: Address) -> str | None:
        """The authenticated identity of a coaps+tcp peer in the form registrations are bound
        to (``PeerIdentity.key``); None on plain TCP."""
        identity = self.peer_identity(remote)
        return identity.key if identity is not None else None

    def peer_identity(self, remote: Address) -> PeerIdentity | None:
        link = self._find(remote)
        if link is None or link.tls is None or not link.tls.established:
            return None
        return link.tls.identity

    async def _exchange(self, link: TcpLink, request: Message, timeout: float | None) -> Message:
        if link.write_paused:
            await link.writable()
        conn = link.conn
        if conn is None:
            raise ConnectionLost(f"connection to {link.peer!r} is not open")
        fut: asyncio.Future[Message] = self.loop.create_future()
        ex = conn.send_request(request, self.loop.time(), timeout)
        ex.user = fut
        link.flush()
        try:
            return await fut
        except asyncio.CancelledError:
            conn.cancel(ex)
            link.flush()
            raise

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message:
        """Send ``request`` and return its response; block-wise transfers in both
        directions are done here, with BERT where both sides allow it. A message that fits
        the peer's Max-Message-Size goes whole; ``block_szx`` sizes ordinary blocks."""
        link = await self._link_for(remote)
        conn = link.conn
        assert conn is not None
        if (request.payload and not conn.csm_received
                and frame_size(request) > BASE_MAX_MESSAGE_SIZE):
            # How to send a large body depends on the peer's limits: learn them first.
            await link.peer_csm(self.params.csm_timeout)
        limit = conn.remote.max_message_size
        if request.payload and frame_size(request) > limit:
            room = bert_room(limit, request)
            if conn.bert and room >= 2 * BERT_UNIT:
                sender = StreamBlock1Sender(request, BERT_SZX, room)
            else:
                szx = block_szx
                while szx > 0 and (1 << (szx + 4)) > payload_room(limit, request):
                    szx -= 1
                sender = StreamBlock1Sender(request, szx)
            while True:
                part = sender.next_request()
                part.token = b""
                response = await self._exchange(link, part, timeout)
                if sender.on_response(response):
                    break
        else:
            response = await self._exchange(link, request, timeout)
        block = response.block2
        if block is not None and block.more:
            response = await self._collect(link, request, response, timeout)
        return response

    async def exchange(self, request: Message, remote: Address, *,
                       timeout: float | None = None) -> Message:
        """One request and its response as it comes, with no block-wise transfer: for
        callers that walk the blocks themselves (a resumable firmware download)."""
        return await self._exchange(await self._link_for(remote), request, timeout)

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                              timeout: float | None = None) -> Message:
        return await self._collect(await self._link_for(remote), request, first, timeout)

    async def _collect(self, link: TcpLink, request: Message, first: Message,
                       timeout: float | None) -> Message:
        conn = link.conn
        collector = StreamBlock2Collector(request, first, conn is not None and conn.bert)
        while collector.more:
            nxt = collector.next_request()
            collector.add(await self._exchange(link, nxt, timeout))
        return collector.result()

    async def observe(self, request: Message, remote: Address) -> Subscription:
        """Register an observation; ``first`` of the result holds the initial response and
        iterating it yields the notifications until the observation or connection ends."""
        link = await self._link_for(remote)
        if request.observe is None:
            request.observe = 0
        if not request.token:
            request.token = new_token()
        sub = Subscription(self, request.copy(), link.peer)
        ex = self._start(link, request, sub)
        sub.exchange = ex
        first = await sub.first
        block = first.block2
        if block is not None and block.more:
            full = await self._collect(link, sub.request, first, None)
            sub.first = self.loop.create_future()
            sub.first.set_result(full)
        return sub

    def _start(self, link: TcpLink, request: Message, user: ResponseSink) -> Exchange:
        conn = link.conn
        if conn is None:
            raise ConnectionLost(f"connection to {link.peer!r} is not open")
        ex = conn.send_request(request, self.loop.time())
        ex.user = user
        link.flush()
        return ex

    async def observe_with(self, request: Message, remote: Address, sink: ResponseSink
                           ) -> Exchange:
        """Send an observe request whose responses all go to ``sink``; returns the exchange
        (its token identifies the observation). The connection's end is ``sink.on_error``."""
        link = await self._link_for(remote)
        if link.write_paused:
            await link.writable()
        return self._start(link, request, sink)

    async def resume_observation(self, request: Message, remote: Address, sink: ResponseSink
                                 ) -> Exchange:
        """Route notifications with ``request.token`` to ``sink``. Observations do not
        outlive TCP connections, so this only works while the connection that carried the
        observation is still open; otherwise ``sink.on_error`` is called soon."""
        link = self._find(remote)
        if link is not None and link.usable and link.conn is not None:
            ex = link.conn.resume_observation(request)
            ex.user = sink
            return ex
        ex = Exchange(request, remote, None)
        ex.done = True
        self.loop.call_soon(sink.on_error, ConnectionLost(
            f"no connection with {peer_key(remote)!r}: the observation ended with it"))
        return ex

    def forget(self, exchange: Exchange) -> None:
        """Stop routing an exchange's responses (later ones are dropped)."""
        link = getattr(exchange.peer, "link", None)
        if isinstance(link, TcpLink) and link.conn is not None:
            link.conn.cancel(exchange)
            link.flush()

    async def ping(self, remote: Address, timeout: float | None = None) -> float:
        """Signalling Ping (7.02); returns the round-trip time to the Pong in seconds."""
        link = await self._link_for(remote)
        conn = link.conn
        assert conn is not None
        start = self.loop.time()
        fut: asyncio.Future[Message] = self.loop.create_future()
        ex = conn.send_ping(start, timeout)
        ex.user = fut
        link.flush()
        await fut
        return self.loop.time() - start

    def release(self, remote: Address, diagnostic: str = "",
                alternative_address: str | None = None, hold_off: int | None = None) -> None:
        """Ask ``remote`` to close the connection in order (7.04 Release)."""
        link = self._find(remote)
        if link is not None and link.conn is not None:
            link.conn.release(self.loop.time(), diagnostic, alternative_address, hold_off)
            self.link_unusable(link)
            link.flush()

    def abort(self, remote: Address, diagnostic: str) -> None:
        """End the connection with ``remote`` at once (7.05 Abort)."""
        link = self._find(remote)
        if link is not None and link.conn is not None:
            link.conn.abort(diagnostic)
            link.flush()

    async def close(self) -> None:
        """Stop listening, release and close every connection, fail what is pending."""
        if self.closed:
            return
        self.closed = True
        if self._server is not None:
            self._server.close()
        self.dispatcher.close()
        for task in list(self._dialing.values()):
            task.cancel()
        for link in list(self._links_all):
            link.close("endpoint closed", "shutting down")
        self._wakeup.cancel()
        # Let the transports call connection_lost (events, observer clean-up) before we
        # free the TLS credentials they point at.
        for _ in range(3):
            await asyncio.sleep(0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self.tls_server is not None:
            self.tls_server.close()

    async def __aenter__(self) -> TcpEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
