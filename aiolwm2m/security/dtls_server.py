"""``DtlsServer``: a sans-IO DTLS 1.2 server multiplexing many peers behind one UDP socket.

The transport feeds every datagram to ``receive_datagram(data, peer, now)``, sends what
``outgoing()`` returns, and calls ``handle_timeout(now)`` at ``next_deadline()``.

Admission works in two steps so that unauthenticated traffic costs no memory: a ClientHello
from an address without a session only gets a stateless HelloVerifyRequest; only a
ClientHello that echoes a valid cookie (proof that the address is reachable) creates a
session, within the ``max_handshakes``/``max_sessions`` limits. Datagrams from unknown peers
that are not ClientHellos, and datagrams with broken record framing, are dropped unseen.

Half-open handshakes (cookie verified, not finished) are what a flood can pile up: a host
may hold ``max_handshakes_per_address`` of them, and when all ``max_handshakes`` are taken a
new handshake replaces the oldest one rather than being refused, so hosts that stall their
handshakes cannot lock everyone else out for the handshake timeout.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from aiolwm2m.log_throttle import LogThrottle

from .config import DtlsServerConfig, ServerCredentials
from .context import EndpointContext, Timing
from .cookies import CookieJar, client_id
from .credentials import PeerIdentity
from .errors import NotEstablished, SecurityError, SessionClosedError
from .events import ApplicationData, Event, HandshakeCompleted, SessionClosed
from .gnutls_ffi import ffi, lib
from .records import (
    APPLICATION_DATA,
    RECORD_HEADER,
    client_hello_random,
    dtls_hello_accepts_server_rpk,
    has_protected_handshake,
    is_initial_client_hello,
    record_count,
)
from .session import DtlsSession, SessionState

log = logging.getLogger(__name__)


def source_of(peer: Hashable) -> Hashable:
    """What the per-address handshake quota counts: the IPv4 address, or the /64 of an
    IPv6 address (one host gets a /64 to pick addresses from)."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return peer
    host = peer[0].partition("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return ipaddress.IPv6Network((address, 64), strict=False)
    return host


class _PeerSession(DtlsSession):
    """A server-side session with the bookkeeping the multiplexer needs."""

    __slots__ = ("armed", "hello_random", "last_activity", "peer", "source")

    def __init__(self, ctx: EndpointContext, prestate: Any, peer: Hashable, source: Hashable,
                 hello_random: bytes | None, now: float, server_rpk: bool) -> None:
        super().__init__(ctx, prestate, server_rpk)
        self.peer = peer
        self.source = source  # what the per-address quota counts it under
        self.hello_random = hello_random
        self.last_activity = now
        self.armed: float | None = None


@dataclass
class DtlsServerStats:
    """Counters for drops and refusals; useful in tests and metrics."""

    hello_verify_requests: int = 0
    handshakes_started: int = 0
    handshakes_completed: int = 0
    handshakes_failed: int = 0
    handshakes_evicted: int = 0
    refused_full: int = 0
    refused_per_address: int = 0
    dropped_malformed: int = 0
    dropped_oversize: int = 0
    dropped_unknown_peer: int = 0
    sessions_replaced: int = 0
    sessions_idle_closed: int = 0


class DtlsServer:
    def __init__(self, credentials: ServerCredentials,
                 config: DtlsServerConfig | None = None) -> None:
        self.config = cfg = config or DtlsServerConfig()
        self._ctx = EndpointContext.for_server(
            datagram=True, lookup=credentials.lookup, psk=credentials.psk,
            rpk=credentials.rpk, x509=credentials.x509, psk_hint=credentials.psk_hint,
            resumption=cfg.resumption, priority=cfg.priority,
            timing=Timing(cfg.handshake_timeout, cfg.retransmit_ms, cfg.mtu))
        self._cookies = CookieJar(cfg.cookie_lifetime)
        self._sessions: OrderedDict[Hashable, _PeerSession] = OrderedDict()
        # Half-open handshakes, oldest first, and how many each source holds.
        self._handshakes: dict[Hashable, _PeerSession] = {}
        self._half_open: dict[Hashable, int] = {}
        # What a flood makes us say: once per interval and kind, then a count.
        self._pressure_log = LogThrottle(log, interval=60.0, burst=1)
        self._timers: list[tuple[float, int, _PeerSession]] = []
        self._seq = itertools.count()
        self._out: list[tuple[bytes, Hashable]] = []
        self._closed = False
        self.stats = DtlsServerStats()

    # -- inspection ----------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    @property
    def handshake_count(self) -> int:
        return len(self._handshakes)

    def peers(self) -> list[Hashable]:
        return list(self._sessions)

    def peer_identity(self, peer: Hashable) -> PeerIdentity | None:
        sess = self._sessions.get(peer)
        return sess.identity if sess is not None else None

    def max_payload(self, peer: Hashable) -> int:
        """The largest application datagram one record can carry to ``peer``."""
        sess = self._sessions.get(peer)
        if sess is None or sess._gnutls_session is None:
            raise NotEstablished(f"no session with {peer!r}")
        return int(lib().gnutls_dtls_get_data_mtu(sess._gnutls_session))

    # -- input ---------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: Hashable, now: float) -> list[Event]:
        size = len(data)
        if self._closed:
            return []
        if size > self.config.max_datagram_size:
            self.stats.dropped_oversize += 1
            return []
        sess = self._sessions.get(peer)
        if (sess is not None and size > RECORD_HEADER and data[0] == APPLICATION_DATA
                and size == RECORD_HEADER + int.from_bytes(data[11:13], "big")
                and data[1] == 0xFE):
            # The hot path: one application data record from an established peer.
            sess.feed(data, 1)
            return self._read(sess, now)
        records = record_count(data)
        if not records:
            self.stats.dropped_malformed += 1
            return []
        self._cookies.rotate_if_due(now)
        hello = is_initial_client_hello(data)
        sess = sess or self._handshakes.get(peer)
        if sess is not None:
            if hello:
                random = client_hello_random(data)
                if random is not None and random != sess.hello_random:
                    return self._client_hello(data, peer, now, replacing=sess)
            if sess.state is SessionState.HANDSHAKING and has_protected_handshake(data):
                sess.check_finished = True
            sess.feed(data, records)
            return self._process(sess, now)
        if not hello:
            self.stats.dropped_unknown_peer += 1
            return []
        return self._client_hello(data, peer, now, replacing=None)

    def _client_hello(self, data: bytes, peer: Hashable, now: float,
                      replacing: _PeerSession | None) -> list[Event]:
        cfg = self.config
        client = client_id(peer)
        prestate = ffi.new("gnutls_dtls_prestate_st *")
        if not self._cookies.verify(client, data, prestate):
            self.stats.hello_verify_requests += 1
            self._out.extend((d, peer) for d in self._cookies.hello_verify_request(client,
                                                                                  prestate))
            return []
        events: list[Event] = []
        if replacing is not None:
            # RFC 6347 4.2.8: the verified cookie shows the address is the client's; it has
            # started over, so the old association goes.
            self.stats.sessions_replaced += 1
            was_up = replacing.state is SessionState.ESTABLISHED
            self._drop(replacing)
            events.append(SessionClosed(peer, "replaced by a new handshake from the same address",
                                        established=was_up))
        source = source_of(peer)
        if self._half_open.get(source, 0) >= cfg.max_handshakes_per_address:
            self.stats.refused_per_address += 1
            self._pressure_log.warning(
                "per-address", "DTLS: refusing handshakes from %s: %d already in progress "
                "from there", source, cfg.max_handshakes_per_address)
            return events
        if len(self._sessions) >= cfg.max_sessions:
            # Established sessions are never given up for a handshake.
            self.stats.refused_full += 1
            self._pressure_log.warning("full", "DTLS: refusing handshakes: %d sessions, the "
                                       "limit", len(self._sessions))
            return events
        # Stalled handshakes make way for new ones, oldest first.
        while self._handshakes and (
                len(self._handshakes) >= cfg.max_handshakes
                or len(self._handshakes) + len(self._sessions) >= cfg.max_sessions):
            oldest = next(iter(self._handshakes.values()))
            self.stats.handshakes_evicted += 1
            self._pressure_log.warning(
                "evicting", "DTLS: %d handshakes in progress (limit %d): the oldest make "
                "way for new ones", len(self._handshakes), cfg.max_handshakes)
            self._drop(oldest)
            events.append(SessionClosed(oldest.peer, "handshake given up for a newer one",
                                        established=False))
        server_rpk = self._ctx.chooses_certificate_type and dtls_hello_accepts_server_rpk(data)
        sess = _PeerSession(self._ctx, prestate, peer, source, client_hello_random(data), now,
                            server_rpk)
        self._handshakes[peer] = sess
        self._half_open[sess.source] = self._half_open.get(sess.source, 0) + 1
        self.stats.handshakes_started += 1
        sess.feed(data)
        events.extend(self._process(sess, now))
        return events

    def _process(self, sess: _PeerSession, now: float) -> list[Event]:
        peer = sess.peer
        events: list[Event] = []
        if sess.state is SessionState.HANDSHAKING:
            try:
                done = sess.drive(now)
            except SecurityError as exc:
                self._collect(sess)
                offered = sess.offered_identity
                self._drop(sess)
                self.stats.handshakes_failed += 1
                # Reported (and logged, throttled) by whoever takes the event.
                log.debug("DTLS handshake with %r failed: %s", peer, exc.reason)
                events.append(SessionClosed(peer, exc.reason, exc, established=False,
                                            offered=offered))
                return events
            self._collect(sess)
            if not done:
                self._arm(sess)
                return events
            self._forget_handshake(sess)
            self._sessions[peer] = sess
            sess.last_activity = now
            self.stats.handshakes_completed += 1
            assert sess.identity is not None
            events.append(HandshakeCompleted(peer, sess.identity, sess.resumed, None,
                                             sess.cipher_suite))
        events += self._read(sess, now)
        return events

    def _read(self, sess: _PeerSession, now: float) -> list[Event]:
        """Application data (and the end, if it came) of an established session."""
        peer = sess.peer
        data = sess.decrypt()
        if sess._out:
            self._collect(sess)
        events: list[Event] = [ApplicationData(peer, d) for d in data]
        if data:
            sess.last_activity = now
            self._sessions.move_to_end(peer)
        if sess.state is SessionState.CLOSED:
            error = sess.close_error
            self._drop(sess)
            events.append(SessionClosed(peer, error.reason if error else "closed by the peer",
                                        error))
        return events

    # -- output --------------------------------------------------------------------------

    def send(self, peer: Hashable, app_data: bytes, now: float) -> None:
        """Encrypt one application datagram for ``peer`` (then see ``outgoing``)."""
        sess = self._sessions.get(peer)
        if sess is None:
            if peer in self._handshakes:
                raise NotEstablished(f"the handshake with {peer!r} is still in progress")
            raise SessionClosedError(f"no DTLS session with {peer!r}")
        try:
            records = sess.encrypt(app_data)
        except SessionClosedError:
            self._drop(sess)
            raise
        self._out.extend((r, peer) for r in records)
        sess.last_activity = now
        self._sessions.move_to_end(peer)

    def outgoing(self) -> list[tuple[bytes, Hashable]]:
        out = self._out
        self._out = []
        return out

    def _collect(self, sess: _PeerSession) -> None:
        peer = sess.peer
        self._out.extend((d, peer) for d in sess.outgoing())

    # -- time ----------------------------------------------------------------------------

    def _arm(self, sess: _PeerSession) -> None:
        if sess.deadline is not None and sess.deadline != sess.armed:
            sess.armed = sess.deadline
            heapq.heappush(self._timers, (sess.deadline, next(self._seq), sess))
            # Entries of finished handshakes are dropped lazily when they surface; if they
            # pile up faster than time surfaces them, sweep them (amortised O(1) per push).
            if len(self._timers) > 2 * len(self._handshakes) + 64:
                self._timers = [e for e in self._timers if not self._stale(e)]
                heapq.heapify(self._timers)

    def _stale(self, entry: tuple[float, int, _PeerSession]) -> bool:
        deadline, _, sess = entry
        return (sess.state is not SessionState.HANDSHAKING or sess.deadline != deadline
                or self._handshakes.get(sess.peer) is not sess)

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and self._stale(timers[0]):
            heapq.heappop(timers)
        deadline = timers[0][0] if timers else None
        idle = self.config.idle_timeout
        if idle is not None and self._sessions:
            oldest = next(iter(self._sessions.values()))
            expiry = oldest.last_activity + idle
            deadline = expiry if deadline is None else min(deadline, expiry)
        return deadline

    def handle_timeout(self, now: float) -> list[Event]:
        """Retransmit handshake flights, expire stuck handshakes, close idle sessions."""
        events: list[Event] = []
        timers = self._timers
        due: list[_PeerSession] = []
        while timers and timers[0][0] <= now:
            entry = heapq.heappop(timers)
            if not self._stale(entry):
                entry[2].armed = None
                due.append(entry[2])
        # Each due session is driven once per call, even if driving it arms a deadline that
        # is already due again: the next call will take it.
        for sess in due:
            events.extend(self._process(sess, now))
        idle = self.config.idle_timeout
        if idle is not None:
            while self._sessions:
                peer, sess = next(iter(self._sessions.items()))
                if sess.last_activity + idle > now:
                    break
                self.stats.sessions_idle_closed += 1
                self._close_session(sess)
                events.append(SessionClosed(peer, "idle timeout"))
        return events

    # -- teardown ------------------------------------------------------------------------

    def close_session(self, peer: Hashable) -> bool:
        """Send close_notify to ``peer`` and forget its session; False if there was none."""
        sess = self._sessions.get(peer) or self._handshakes.get(peer)
        if sess is None:
            return False
        self._close_session(sess)
        return True

    def _close_session(self, sess: _PeerSession) -> None:
        peer = sess.peer
        self._out.extend((d, peer) for d in sess.close())
        self._drop(sess)

    def _drop(self, sess: _PeerSession) -> None:
        peer = sess.peer
        if self._sessions.get(peer) is sess:
            del self._sessions[peer]
        self._forget_handshake(sess)
        sess.free()

    def _forget_handshake(self, sess: _PeerSession) -> None:
        peer = sess.peer
        if self._handshakes.get(peer) is not sess:
            return
        del self._handshakes[peer]
        left = self._half_open.get(sess.source, 0) - 1
        if left > 0:
            self._half_open[sess.source] = left
        else:
            self._half_open.pop(sess.source, None)

    def close(self) -> None:
        """close_notify to every peer, then free all native state (call ``outgoing`` after).

        The server ignores datagrams afterwards.
        """
        self._closed = True
        for sess in list(self._sessions.values()) + list(self._handshakes.values()):
            self._close_session(sess)
        self._timers.clear()
        self._ctx.close()
