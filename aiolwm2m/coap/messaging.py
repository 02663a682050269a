"""The sans-IO RFC 7252 message layer for one datagram endpoint talking to many peers.

Bytes and the current time go in through :meth:`MessageLayer.receive`; requests come back as
return values (the hot path), everything else (responses to our requests, failures,
acknowledgements of our notifications) is appended to :attr:`MessageLayer.events`, and
datagrams to send are appended to :attr:`MessageLayer.outbox`. Timers are data: the
transport asks :meth:`next_deadline` and calls :meth:`handle_timers` when it passes.

A peer is any hashable the transport uses for an address; the layer never interprets it.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Hashable
from typing import Any, Final

from mypy_extensions import mypyc_attr

from .amplification import bound_error_reply
from .codec import decode_udp, encode_udp
from .codes import Code, MessageType
from .errors import CoapError, MessageFormatError, RequestRejected, RequestTimeout
from .generational_cache import MISSING, GenerationalCache
from .message import Message
from .observe import is_fresh
from .options import REGISTRY, OptionNumber, check_option, decode_uint
from .params import DEFAULT_PARAMETERS, TransmissionParameters

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST
_OBSERVE = OptionNumber.OBSERVE

Peer = Hashable

#: Duplicate detection remembers this many requests (two generations of half each). A
#: young generation of 131,072 holds one request from each of 100,000 devices within
#: EXCHANGE_LIFETIME; an entry with a small reply costs about 350 bytes (key, peer
#: address, dict slot, reply), so a flood of tiny requests holds at most some 90 MiB.
DEDUP_CAPACITY: Final = 1 << 18
#: ...and at most this many bytes of cached replies. 100,000 devices' small replies
#: (a 2.01 with its Location-Path is under 48 bytes) fit one generation; a flood of
#: requests drawing large replies rotates the cache early instead of growing it.
DEDUP_BYTES: Final = 16 << 20


class Exchange:
    """A request we sent, from transmission until its (last) response."""

    __slots__ = ("acknowledged", "deadline", "done", "last_seq", "last_seq_time", "mid",
                 "observe", "peer", "ping", "request", "timeout", "token", "user")

    def __init__(self, request: Message, peer: Peer, timeout: float | None) -> None:
        self.request = request
        self.peer = peer
        self.token = request.token
        self.mid = request.mid
        self.acknowledged = False
        self.timeout = timeout
        self.deadline = 0.0
        self.done = False
        # Observe=0 on a GET or FETCH: the exchange outlives its first response.
        self.observe = request.code in (Code.GET, Code.FETCH) and request.observe == 0
        self.ping = request.code == Code.EMPTY
        self.last_seq = -1
        self.last_seq_time = 0.0
        # Owned by the transport (typically a future or a queue of notifications).
        self.user: Any = None

    def __repr__(self) -> str:
        return f"<Exchange {self.request!r} peer={self.peer!r} done={self.done}>"


class _Transmission:
    """A Confirmable message awaiting its ACK or RST."""

    __slots__ = ("attempts", "data", "deadline", "exchange", "mid", "peer", "timeout", "token")

    def __init__(self, data: bytes, peer: Peer, mid: int, token: bytes,
                 exchange: Exchange | None, timeout: float, now: float) -> None:
        self.data = data
        self.peer = peer
        self.mid = mid
        self.token = token
        self.exchange = exchange
        self.attempts = 0
        self.timeout = timeout
        self.deadline = now + timeout


class ResponseReceived:
    __slots__ = ("exchange", "response")

    def __init__(self, exchange: Exchange, response: Message) -> None:
        self.exchange = exchange
        self.response = response


class ExchangeFailed:
    __slots__ = ("error", "exchange")

    def __init__(self, exchange: Exchange, error: CoapError) -> None:
        self.exchange = exchange
        self.error = error


class MessageAcknowledged:
    """A Confirmable message we sent that was not a request (a notification, a separate
    response) reached its peer."""

    __slots__ = ("mid", "peer", "token")

    def __init__(self, peer: Peer, mid: int, token: bytes) -> None:
        self.peer, self.mid, self.token = peer, mid, token


class MessageRejected(MessageAcknowledged):
    """The peer answered a non-request message of ours with a Reset."""

    __slots__ = ()


class MessageTimedOut(MessageAcknowledged):
    """A Confirmable non-request message was never acknowledged."""

    __slots__ = ()


Event = ResponseReceived | ExchangeFailed | MessageAcknowledged


class LayerStatistics:
    __slots__ = ("duplicates", "format_errors", "received", "retransmissions", "sent",
                 "unmatched")

    def __init__(self) -> None:
        self.received = 0
        self.duplicates = 0
        self.format_errors = 0
        self.retransmissions = 0
        self.unmatched = 0
        self.sent = 0


# What critical_problem needs of each critical option, flat: it runs on every request.
_CRITICAL = {n: (d.repeatable, d.min_length, d.max_length)
             for n, d in REGISTRY.items() if n & 1}


def critical_problem(msg: Message) -> str | None:
    """Why a critical option makes ``msg`` unprocessable, or None (RFC 7252 section 5.4.1)."""
    seen = -1
    critical = _CRITICAL
    for number, raw in msg.options:
        if number & 1:
            rule = critical.get(number)
            if rule is None:
                return f"unrecognized critical option {number}"
            repeatable, shortest, longest = rule
            if number == seen and not repeatable:
                return f"critical option {REGISTRY[number].name} repeated"
            seen = number
            if not shortest <= len(raw) <= longest:
                return check_option(number, raw)
    return None


# Compiled (aiolwm2m.compiled), yet the client's gated layer, which is not, extends it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MessageLayer:
    def __init__(
        self,
        params: TransmissionParameters = DEFAULT_PARAMETERS,
        *,
        rng: random.Random | None = None,
        now: float = 0.0,
        dedup_capacity: int = DEDUP_CAPACITY,
        dedup_bytes: int = DEDUP_BYTES,
        error_reply_slack: int | None = None,
    ) -> None:
        """``error_reply_slack``: for endpoints whose peers are not authenticated (NoSec
        UDP), cut error replies' diagnostics to at most this many bytes more than their
        request (see :mod:`.amplification`); None leaves replies as they are."""
        self.params = params
        self._rng = rng or random.Random()
        self._next_mid = self._rng.randrange(0x10000)
        self._dedup: GenerationalCache[bytes | None] = GenerationalCache(
            params.exchange_lifetime, dedup_capacity, now, dedup_bytes)
        # -1 for none: a plain int keeps the check in respond() cheap when compiled.
        self._error_reply_slack = -1 if error_reply_slack is None else error_reply_slack
        # Message IDs of NON messages we sent, so a Reset to one can be attributed.
        self._non_sent: GenerationalCache[bytes] = GenerationalCache(
            params.non_lifetime, dedup_capacity, now)
        self._transmissions: dict[tuple[Peer, int], _Transmission] = {}
        self._exchanges: dict[tuple[Peer, bytes], Exchange] = {}
        # Incoming CON requests we acknowledged with an empty ACK: their response goes as CON.
        self._deferred: set[tuple[Peer, int]] = set()
        self._waiting: dict[Peer, deque[Exchange]] = {}
        self._unacked: dict[Peer, int] = {}
        self._timers: list[tuple[float, int, _Transmission | Exchange]] = []
        self._timer_seq = 0
        self.outbox: list[tuple[bytes, Peer]] = []
        self.events: list[Event] = []
        self.stats = LayerStatistics()

    # -- identifiers ----------------------------------------------------------------------

    def new_mid(self) -> int:
        mid = self._next_mid
        self._next_mid = (mid + 1) & 0xFFFF
        return mid

    def new_token(self) -> bytes:
        return self._rng.getrandbits(64).to_bytes(8, "big")

    # -- receiving ------------------------------------------------------------------------

    def receive(self, data: bytes, peer: Peer, now: float) -> Message | None:
        """Process one datagram; returns a new request for the application, else None."""
        self.stats.received += 1
        try:
            msg = decode_udp(data)
        except MessageFormatError as e:
            self.stats.format_errors += 1
            if e.mtype == CON and e.mid is not None:
                self._send_empty(RST, e.mid, peer)
            return None
        msg.remote = peer
        c = msg.code
        if 0 < c < 32:
            return self._receive_request(msg, peer, now)
        if c == 0:
            self._receive_empty(msg, peer, now)
        else:  # decode_udp refuses the reserved code classes 1, 6 and 7
            self._receive_response(msg, peer, now)
        return None

    def _receive_request(self, msg: Message, peer: Peer, now: float) -> Message | None:
        mtype = msg.mtype
        if mtype >= ACK:
            # A request can only travel in CON or NON; an ACK/RST carrying one is malformed.
            self.stats.format_errors += 1
            return None
        key = (peer, msg.mid)
        seen = self._dedup.get(key)
        if seen is not MISSING:
            self.stats.duplicates += 1
            if mtype == CON and isinstance(seen, bytes):
                self.outbox.append((seen, peer))
            return None
        self._dedup.add(key, None, now)
        if msg.options:
            problem = critical_problem(msg)
            if problem is not None:
                if mtype == CON:
                    self.respond(msg, msg.response(Code.BAD_OPTION, problem.encode(), 0), now)
                return None
        return msg

    def _receive_empty(self, msg: Message, peer: Peer, now: float) -> None:
        mtype = msg.mtype
        if mtype == CON:
            # CoAP ping: answered with a Reset (RFC 7252 section 4.3).
            self._send_empty(RST, msg.mid, peer)
            return
        if mtype == NON:
            self.stats.format_errors += 1
            return
        t = self._transmissions.pop((peer, msg.mid), None)
        if t is None:
            if mtype == RST:
                token = self._non_sent.pop((peer, msg.mid))
                if token is not MISSING:
                    assert isinstance(token, bytes)
                    self.events.append(MessageRejected(peer, msg.mid, token))
            return
        self._release_slot(peer, now)
        ex = t.exchange
        if ex is None:
            cls = MessageAcknowledged if mtype == ACK else MessageRejected
            self.events.append(cls(peer, t.mid, t.token))
            return
        if ex.ping:
            self._finish(ex)
            self.events.append(ResponseReceived(ex, msg))
        elif mtype == RST:
            self._finish(ex)
            self.events.append(ExchangeFailed(ex, RequestRejected(
                f"{peer!r} reset request {ex.request.mid}")))
        else:
            ex.acknowledged = True
            if ex.timeout is None:
                self._arm_exchange(ex, now, self.params.response_timeout)

    def _receive_response(self, msg: Message, peer: Peer, now: float) -> None:
        mtype = msg.mtype
        if mtype == ACK:
            t = self._transmissions.get((peer, msg.mid))
            if t is None or t.exchange is None or t.token != msg.token:
                self.stats.unmatched += 1
                return
            del self._transmissions[(peer, msg.mid)]
            self._release_slot(peer, now)
            self._deliver(t.exchange, msg, now)
            return
        if mtype == RST:
            self.stats.format_errors += 1
            return
        ex = self._exchanges.get((peer, msg.token))
        if mtype == CON:
            key = (peer, msg.mid)
            seen = self._dedup.get(key)
            if seen is not MISSING:
                self.stats.duplicates += 1
                if isinstance(seen, bytes):
                    self.outbox.append((seen, peer))
                return
            reply = encode_udp(Message(ACK if ex is not None else RST, 0, msg.mid))
            self._dedup.add(key, reply, now, len(reply))
            self.outbox.append((reply, peer))
        elif ex is None:
            # RFC 7641 section 3.6: a Reset tells the server we lost interest.
            self._send_empty(RST, msg.mid, peer)
        if ex is None:
            self.stats.unmatched += 1
            return
        if not ex.acknowledged:
            # A separate response overtook the ACK: stop retransmitting the request.
            t = self._transmissions.pop((peer, ex.mid), None)
            if t is not None:
                self._release_slot(peer, now)
        self._deliver(ex, msg, now)

    def _deliver(self, ex: Exchange, msg: Message, now: float) -> None:
        ex.acknowledged = True
        if ex.observe:
            raw = msg.get_option(_OBSERVE)
            if raw is not None and 64 <= msg.code < 96:
                seq = decode_uint(raw)
                if ex.last_seq >= 0 and not is_fresh(ex.last_seq, ex.last_seq_time, seq, now):
                    return
                ex.last_seq, ex.last_seq_time = seq, now
                ex.deadline = 0.0  # an established observation has no deadline
                self.events.append(ResponseReceived(ex, msg))
                return
        self._finish(ex)
        self.events.append(ResponseReceived(ex, msg))

    # -- sending --------------------------------------------------------------------------

    def send_request(self, request: Message, peer: Peer, now: float,
                     timeout: float | None = None) -> Exchange:
        """Queue ``request`` for ``peer``; a token is chosen when the request has none.

        ``timeout`` bounds the whole wait for the response, retransmissions included. Without
        it a CON request fails after MAX_TRANSMIT_WAIT unacknowledged, or ``response_timeout``
        after an empty ACK; a NON request after ``response_timeout``.
        """
        if request.code != Code.EMPTY and not request.token:
            request.token = self.new_token()
        request.remote = peer
        ex = Exchange(request, peer, timeout)
        if request.code != Code.EMPTY:
            key = (peer, ex.token)
            old = self._exchanges.get(key)
            if old is not None:
                self._finish(old)
            self._exchanges[key] = ex
        if request.mtype == CON and self._unacked.get(peer, 0) >= self.params.nstart:
            self._waiting.setdefault(peer, deque()).append(ex)
            return ex
        self._transmit_request(ex, now)
        return ex

    def resume_observation(self, request: Message, peer: Peer) -> Exchange:
        """Accept notifications for an observation established before a restart: the
        exchange is registered under the request's token without sending anything."""
        request.remote = peer
        ex = Exchange(request, peer, None)
        ex.observe = True
        ex.acknowledged = True
        key = (peer, ex.token)
        old = self._exchanges.get(key)
        if old is not None:
            self._finish(old)
        self._exchanges[key] = ex
        return ex

    def send_ping(self, peer: Peer, now: float) -> Exchange:
        return self.send_request(Message(CON, Code.EMPTY), peer, now)

    def _transmit_request(self, ex: Exchange, now: float) -> None:
        request = ex.request
        request.mid = ex.mid = self.new_mid()
        data = encode_udp(request)
        peer = ex.peer
        self.outbox.append((data, peer))
        self.stats.sent += 1
        if request.mtype == CON:
            self._track(data, peer, request.mid, request.token, ex, now)
            if ex.timeout is not None:
                self._arm_exchange(ex, now, ex.timeout)
        else:
            ex.acknowledged = True
            self._arm_exchange(ex, now, self.params.response_timeout)

    def _track(self, data: bytes, peer: Peer, mid: int, token: bytes,
               ex: Exchange | None, now: float) -> None:
        p = self.params
        timeout = p.ack_timeout * (1 + self._rng.random() * (p.ack_random_factor - 1))
        t = _Transmission(data, peer, mid, token, ex, timeout, now)
        self._transmissions[(peer, mid)] = t
        self._unacked[peer] = self._unacked.get(peer, 0) + 1
        self._push_timer(t.deadline, t)

    def _release_slot(self, peer: Peer, now: float) -> None:
        n = self._unacked.get(peer, 0) - 1
        if n > 0:
            self._unacked[peer] = n
        else:
            self._unacked.pop(peer, None)
        waiting = self._waiting.get(peer)
        while waiting and self._unacked.get(peer, 0) < self.params.nstart:
            ex = waiting.popleft()
            if not waiting:
                del self._waiting[peer]
            if not ex.done:
                self._transmit_request(ex, now)

    def respond(self, request: Message, response: Message, now: float) -> None:
        """Send ``response`` to ``request`` (piggybacked when the request is still unacked)."""
        peer = request.remote
        response.token = request.token
        if response.code >= 128 and self._error_reply_slack >= 0:
            bound_error_reply(request, response, self._error_reply_slack)
        key = (peer, request.mid)
        if request.mtype == CON and not (self._deferred and key in self._deferred):
            response.mtype = ACK
            response.mid = request.mid
            data = encode_udp(response)
            self._dedup.replace(key, data, now, len(data))
            self.outbox.append((data, peer))
            self.stats.sent += 1
            return
        if request.mtype == CON:
            self._deferred.discard(key)
            response.mtype = CON
        elif response.mtype not in (CON, NON):
            response.mtype = NON
        self.send_message(response, peer, now)

    def acknowledge(self, request: Message, now: float) -> None:
        """Acknowledge a CON request now; its response will follow as a separate message."""
        if request.mtype != CON:
            return
        peer = request.remote
        key = (peer, request.mid)
        if key in self._deferred:
            return
        data = encode_udp(Message(ACK, 0, request.mid))
        self._deferred.add(key)
        self._dedup.replace(key, data, now, len(data))
        self.outbox.append((data, peer))

    def send_message(self, msg: Message, peer: Peer, now: float) -> int:
        """Send a CON or NON message that is not a request (a notification, a separate
        response); returns its message ID. Its fate is reported as a
        :class:`MessageAcknowledged`, :class:`MessageRejected` or :class:`MessageTimedOut`.
        """
        msg.mid = self.new_mid()
        msg.remote = peer
        data = encode_udp(msg)
        self.outbox.append((data, peer))
        self.stats.sent += 1
        if msg.mtype == CON:
            self._track(data, peer, msg.mid, msg.token, None, now)
        else:
            self._non_sent.add((peer, msg.mid), msg.token, now)
        return msg.mid

    def _send_empty(self, mtype: int, mid: int, peer: Peer) -> None:
        self.outbox.append((encode_udp(Message(mtype, 0, mid)), peer))

    def cancel(self, exchange: Exchange, now: float) -> None:
        """Forget an exchange: no more events for it; later messages with its token get RST."""
        self._finish(exchange)
        t = self._transmissions.get((exchange.peer, exchange.mid))
        if t is not None and t.exchange is exchange:
            del self._transmissions[(exchange.peer, exchange.mid)]
            self._release_slot(exchange.peer, now)

    def _finish(self, ex: Exchange) -> None:
        if ex.done:
            return
        ex.done = True
        key = (ex.peer, ex.token)
        if self._exchanges.get(key) is ex:
            del self._exchanges[key]

    def fail_all(self, error: CoapError) -> None:
        """End every pending exchange with ``error`` (the endpoint is going away)."""
        for ex in list(self._exchanges.values()):
            self._finish(ex)
            self.events.append(ExchangeFailed(ex, error))
        for t in self._transmissions.values():
            if t.exchange is not None and t.exchange.ping and not t.exchange.done:
                t.exchange.done = True
                self.events.append(ExchangeFailed(t.exchange, error))
        self._transmissions.clear()
        self._unacked.clear()
        self._waiting.clear()

    def fail_peer(self, peer: Peer, error: CoapError) -> None:
        """End every exchange and transmission with ``peer`` (its session went away)."""
        for tkey in [k for k in self._transmissions if k[0] == peer]:
            t = self._transmissions.pop(tkey)
            if t.exchange is not None and t.exchange.ping and not t.exchange.done:
                t.exchange.done = True
                self.events.append(ExchangeFailed(t.exchange, error))
        self._unacked.pop(peer, None)
        for ex in self._waiting.pop(peer, ()):
            if not ex.done:
                self._finish(ex)
                self.events.append(ExchangeFailed(ex, error))
        for ekey, ex in list(self._exchanges.items()):
            if ekey[0] == peer:
                self._finish(ex)
                self.events.append(ExchangeFailed(ex, error))

    # -- timers ---------------------------------------------------------------------------

    def _push_timer(self, deadline: float, item: _Transmission | Exchange) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, item))

    def _arm_exchange(self, ex: Exchange, now: float, default: float | None) -> None:
        timeout = ex.timeout if ex.timeout is not None else default
        if timeout is None:
            ex.deadline = 0.0
            return
        ex.deadline = now + timeout
        self._push_timer(ex.deadline, ex)

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers:
            deadline, _, item = timers[0]
            if self._timer_live(deadline, item):
                return deadline
            heapq.heappop(timers)
        return None

    def _timer_live(self, deadline: float, item: _Transmission | Exchange) -> bool:
        if isinstance(item, _Transmission):
            return (item.deadline == deadline
                    and self._transmissions.get((item.peer, item.mid)) is item)
        return not item.done and item.deadline == deadline

    def handle_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, item = heapq.heappop(timers)
            if not self._timer_live(deadline, item):
                continue
            if isinstance(item, _Transmission):
                self._retransmit(item, now)
            else:
                t = self._transmissions.get((item.peer, item.mid))
                if t is not None and t.exchange is item:
                    del self._transmissions[(item.peer, item.mid)]
                    self._release_slot(item.peer, now)
                self._finish(item)
                self.events.append(ExchangeFailed(item, RequestTimeout(
                    f"no response from {item.peer!r} within {item.timeout or 0:g}s"
                    if item.timeout else f"no response from {item.peer!r}")))

    def _retransmit(self, t: _Transmission, now: float) -> None:
        if t.attempts >= self.params.max_retransmit:
            # The last retransmission's timeout ran out: MAX_TRANSMIT_WAIT has passed.
            del self._transmissions[(t.peer, t.mid)]
            self._release_slot(t.peer, now)
            ex = t.exchange
            if ex is None:
                self.events.append(MessageTimedOut(t.peer, t.mid, t.token))
            elif not ex.done:
                self._finish(ex)
                self.events.append(ExchangeFailed(ex, RequestTimeout(
                    f"{t.peer!r} did not acknowledge after {t.attempts} retransmissions")))
            return
        t.attempts += 1
        t.timeout *= 2
        t.deadline = now + t.timeout
        self.outbox.append((t.data, t.peer))
        self.stats.retransmissions += 1
        self._push_timer(t.deadline, t)

    # -- introspection --------------------------------------------------------------------

    @property
    def pending_exchanges(self) -> int:
        return len(self._exchanges)

    @property
    def pending_transmissions(self) -> int:
        return len(self._transmissions)
