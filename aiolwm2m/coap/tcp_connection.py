"""The sans-IO state of one CoAP-over-TCP/TLS connection (RFC 8323), for either end.

The transport feeds received bytes and the time to :meth:`TcpConnection.receive_data`, which
returns the new requests (the hot path) and appends everything else to :attr:`events`:
responses to our requests and their failures (the same event types as the UDP message layer),
the peer's CSM, Release and Abort. Frames to write accumulate in :attr:`outbox`. Timers are
data: the transport calls :meth:`handle_timers` once :meth:`next_deadline` has passed.

There are no message types, IDs, acknowledgements or retransmissions on a stream (CoT-007):
a message is identified by its token within the connection (CoT-008). Each side sends its CSM
first and does not wait for the peer's; until that arrives the peer's limits are the base
values. Protocol errors end the connection with an Abort carrying a diagnostic.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from .codes import Code, code_str
from .errors import CoapError, EndpointClosed, RequestTimeout
from .message import Message
from .messaging import Exchange, ExchangeFailed, ResponseReceived, critical_problem
from .options import OptionNumber
from .signals import (
    BASE_CAPABILITIES,
    AbortInfo,
    Capabilities,
    ReleaseInfo,
    SignalError,
    build_abort,
    build_csm,
    build_ping,
    build_pong,
    build_release,
    check_signal_options,
    has_custody,
    parse_abort,
    parse_csm,
    parse_release,
)
from .tcp_framing import FrameParser, FrameTooLarge, FramingError, encode_tcp, frame_size

_OBSERVE = OptionNumber.OBSERVE
_rng = random.Random()
#: The largest Max-Message-Size an end may announce (and so buffer per connection); BERT
#: gains nothing from messages beyond a few hundred KiB.
MAX_MAX_MESSAGE_SIZE = 8 * 1024 * 1024


def new_token() -> bytes:
    return _rng.getrandbits(64).to_bytes(8, "big")


class ConnectionLost(EndpointClosed):
    """The connection carrying a request or observation ended (closed, aborted, released)."""


class MessageTooLarge(CoapError):
    """A message we were asked to send exceeds the peer's Max-Message-Size."""


@dataclass(frozen=True, slots=True)
class TcpParameters:
    """Settings of one end of a connection.

    ``max_message_size`` is what we accept and announce; ``request_timeout`` bounds the wait
    for a response when the caller gives none; ``csm_timeout`` is how long the peer has to
    send its CSM; without traffic for ``idle_timeout`` the connection is released; without
    anything received for ``keepalive_interval`` a Ping is sent, and the connection is aborted
    when nothing arrives within ``ping_timeout`` after it; after a Release, in-flight
    exchanges get ``release_timeout`` to finish. A frame whose first bytes arrived must be
    complete within ``frame_timeout``: otherwise a peer could park a nearly complete
    Max-Message-Size frame in our buffer for as long as it keeps the connection.
    """

    max_message_size: int = 65536
    block_wise: bool = True
    request_timeout: float = 93.0
    csm_timeout: float = 10.0
    idle_timeout: float | None = None
    keepalive_interval: float | None = None
    ping_timeout: float = 10.0
    release_timeout: float = 5.0
    # 64 KiB take about 26 s at 20 kbit/s, a slow cellular uplink.
    frame_timeout: float | None = 30.0

    def __post_init__(self) -> None:
        if self.max_message_size < 64:
            raise ValueError("max_message_size below 64 bytes cannot carry useful messages")
        if self.max_message_size > MAX_MAX_MESSAGE_SIZE:
            # Each connection may buffer one frame of this size: it must stay bounded.
            raise ValueError(f"max_message_size above {MAX_MAX_MESSAGE_SIZE} bytes would let "
                             "every connection hold that much memory")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.max_message_size, self.block_wise)


DEFAULT_TCP_PARAMETERS = TcpParameters()


class ConnectionState(Enum):
    OPEN = "open"
    RELEASING = "releasing"  # a Release was sent or received: no new requests from us
    CLOSED = "closed"


# -- events (besides messaging.ResponseReceived / ExchangeFailed) ---------------------------


@dataclass(frozen=True, slots=True)
class CsmReceived:
    peer: Hashable
    capabilities: Capabilities
    first: bool


@dataclass(frozen=True, slots=True)
class ReleaseReceived:
    peer: Hashable
    release: ReleaseInfo


@dataclass(frozen=True, slots=True)
class AbortReceived:
    peer: Hashable
    abort: AbortInfo


@dataclass(frozen=True, slots=True)
class AbortSent:
    """We aborted the connection (a protocol error of the peer, or on request)."""

    peer: Hashable
    abort: AbortInfo


ConnectionEvent = CsmReceived | ReleaseReceived | AbortReceived | AbortSent
Event = ResponseReceived | ExchangeFailed | ConnectionEvent


class TcpConnection:
    __slots__ = ("_exchanges", "_frame_started", "_keepalive_sent", "_keepalive_token",
                 "_parser", "_release_deadline", "_timer_seq", "_timers", "close_reason",
                 "csm_received", "events", "last_activity", "last_received", "local",
                 "opened_at", "outbox", "outbox_bytes", "params", "peer", "remote", "state",
                 "timers_changed", "unanswered", "unmatched")

    def __init__(self, peer: Hashable, now: float,
                 params: TcpParameters = DEFAULT_TCP_PARAMETERS) -> None:
        self.peer = peer
        self.params = params
        self.local = params.capabilities
        self.remote = BASE_CAPABILITIES
        self.csm_received = False
        self.state = ConnectionState.OPEN
        self.close_reason = ""
        self._parser = FrameParser(params.max_message_size)
        self._exchanges: dict[bytes, Exchange] = {}
        self._timers: list[tuple[float, int, Exchange]] = []
        self._timer_seq = 0
        self._keepalive_token: bytes | None = None
        self._keepalive_sent = 0.0
        self._release_deadline = 0.0
        # When the first bytes of the frame still incomplete in the parser arrived.
        self._frame_started: float | None = None
        self.opened_at = self.last_received = self.last_activity = now
        self.unanswered = 0  # requests handed out and not yet answered (Custody)
        self.unmatched = 0
        # Set when a deadline may have moved earlier than the transport last asked about
        # (the transport clears it after calling next_deadline again).
        self.timers_changed = False
        self.events: list[Event] = []
        # Our CSM goes first, before anything else we send (RFC 8323 section 5.3).
        csm = encode_tcp(build_csm(self.local))
        self.outbox: list[bytes] = [csm]
        # Bytes in the outbox, so the transport can write out (and feel back-pressure)
        # in the middle of a batch; whoever empties the outbox resets it.
        self.outbox_bytes = len(csm)

    def __repr__(self) -> str:
        return f"<TcpConnection {self.peer!r} {self.state.value}>"

    @property
    def bert(self) -> bool:
        """Both CSMs allow BERT blocks (Block-Wise-Transfer, Max-Message-Size > 1152)."""
        return self.local.bert and self.remote.bert

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    @property
    def pending_exchanges(self) -> int:
        return len(self._exchanges)

    def _queue(self, frame: bytes) -> None:
        self.outbox.append(frame)
        self.outbox_bytes += len(frame)

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Message]:
        """Process bytes from the stream; returns the new requests for the application."""
        if self.state is ConnectionState.CLOSED:
            return []
        self.last_received = self.last_activity = now
        parser = self._parser
        try:
            frames = parser.feed(data)
        except FrameTooLarge as e:
            self.abort(e.reason)
            return []
        except FramingError as e:
            self.abort(f"malformed frame: {e.reason}")
            return []
        if parser.buffered:
            if frames or self._frame_started is None:
                self._frame_started = now  # a new frame began in this data
                self.timers_changed = True
        else:
            self._frame_started = None
        requests: list[Message] = []
        peer = self.peer
        for msg in frames:
            code = msg.code
            msg.remote = peer
            if not self.csm_received and code != Code.CSM:
                self.abort(f"the first message must be a CSM, got {code_str(code)}")
                return []
            if 0 < code < 32:
                problem = critical_problem(msg) if msg.options else None
                if problem is None:
                    self.unanswered += 1
                    requests.append(msg)
                else:
                    self._queue(encode_tcp(msg.response(Code.BAD_OPTION,
                                                               problem.encode(), 0)))
            elif 64 <= code < 192:
                self._receive_response(msg, now)
            elif code >= 224:
                self._receive_signal(msg, now)
                if self.closed:
                    # Messages after an Abort are not processed (RFC 8323 section 5.6).
                    return []
            elif code != 0:
                # Code classes 1 and 6 are reserved; Empty (0.00) is ignored (section 3.4).
                self.abort(f"reserved code {code_str(code)}")
                return []
        return requests

    def _receive_response(self, msg: Message, now: float) -> None:
        ex = self._exchanges.get(msg.token)
        if ex is None or ex.ping:
            # Nothing to reject with on a stream: late answers to cancelled requests and
            # notifications of forgotten observations are dropped.
            self.unmatched += 1
            return
        if ex.observe and 64 <= msg.code < 96 and msg.get_option(_OBSERVE) is not None:
            # Notifications arrive in order over TCP: no freshness check (RFC 8323 7.1).
            ex.deadline = 0.0
            self.events.append(ResponseReceived(ex, msg))
            return
        self._finish(ex)
        self.events.append(ResponseReceived(ex, msg))
        self._check_released()

    def _receive_signal(self, msg: Message, now: float) -> None:
        code = msg.code
        if code == Code.CSM:
            try:
                caps = parse_csm(msg, self.remote)
            except SignalError as e:
                self.abort(e.reason, bad_csm_option=e.option)
                return
            first = not self.csm_received
            self.remote = caps
            self.csm_received = True
            self.events.append(CsmReceived(self.peer, caps, first))
            return
        if code == Code.ABORT:
            info = parse_abort(msg)
            self.events.append(AbortReceived(self.peer, info))
            self._close("aborted by the peer" + (f": {info.diagnostic}" if info.diagnostic
                                                  else ""))
            return
        try:
            check_signal_options(msg)
        except SignalError as e:
            self.abort(e.reason, bad_csm_option=e.option)
            return
        if code == Code.PING:
            # Custody promises that every earlier request was processed; we can only
            # say so when none is still waiting for its handler.
            custody = has_custody(msg) and self.unanswered == 0
            self._queue(encode_tcp(build_pong(msg.token, custody)))
        elif code == Code.PONG:
            token = msg.token
            if not token:
                # libcoap 4.3 answers without the Ping's token: take such a Pong as the
                # answer to our oldest outstanding Ping.
                if self._keepalive_token is not None:
                    token = self._keepalive_token
                else:
                    token = next((t for t, e in self._exchanges.items() if e.ping), b"")
            if token == self._keepalive_token:
                self._keepalive_token = None
                self.timers_changed = True  # the next keep-alive is due sooner than the timeout
                return
            ex = self._exchanges.get(token)
            if ex is not None and ex.ping:
                self._finish(ex)
                self.events.append(ResponseReceived(ex, msg))
        elif code == Code.RELEASE:
            self.events.append(ReleaseReceived(self.peer, parse_release(msg)))
            self._enter_release(now)
        # Other signal codes are unassigned; there is nothing to do with them.

    # -- sending --------------------------------------------------------------------------

    def send_request(self, request: Message, now: float, timeout: float | None = None
                     ) -> Exchange:
        """Queue ``request``; its response (or failure) arrives as an event. A request
        without a token gets one; an exchange already using the token is replaced."""
        if self.state is not ConnectionState.OPEN:
            raise ConnectionLost(f"connection to {self.peer!r} is "
                                 f"{'closed' if self.closed else 'being released'}")
        if not request.token:
            token = new_token()
            while token in self._exchanges:
                token = new_token()
            request.token = token
        size = frame_size(request)
        if size > self.remote.max_message_size:
            raise MessageTooLarge(f"a {size}-byte request exceeds {self.peer!r}'s "
                                  f"Max-Message-Size of {self.remote.max_message_size}")
        request.remote = self.peer
        ex = Exchange(request, self.peer, timeout)
        old = self._exchanges.get(ex.token)
        if old is not None:
            self._finish(old)
        self._exchanges[ex.token] = ex
        self._queue(encode_tcp(request))
        self.last_activity = now
        self._arm(ex, now + (timeout if timeout is not None else self.params.request_timeout))
        return ex

    def resume_observation(self, request: Message) -> Exchange:
        """Route responses carrying ``request.token`` to a new observe exchange, sending
        nothing (the observation was registered earlier on this connection)."""
        request.remote = self.peer
        ex = Exchange(request, self.peer, None)
        ex.observe = True
        old = self._exchanges.get(ex.token)
        if old is not None:
            self._finish(old)
        self._exchanges[ex.token] = ex
        return ex

    def send_ping(self, now: float, timeout: float | None = None, custody: bool = False
                  ) -> Exchange:
        """Ping the peer; the Pong arrives as a ResponseReceived of the returned exchange."""
        if self.closed:
            raise ConnectionLost(f"connection to {self.peer!r} is closed")
        token = new_token()
        ping = build_ping(token, custody)
        ping.remote = self.peer
        ex = Exchange(ping, self.peer, timeout)
        ex.ping = True
        self._exchanges[token] = ex
        self._queue(encode_tcp(ping))
        self._arm(ex, now + (timeout if timeout is not None else self.params.ping_timeout))
        return ex

    def respond(self, request: Message, response: Message, now: float) -> None:
        """Send the response to one of the requests :meth:`receive_data` returned."""
        if self.unanswered:
            self.unanswered -= 1
        if self.state is ConnectionState.CLOSED:
            return
        response.token = request.token
        self._send_answer(response, now)
        self._check_released()

    def send_notification(self, notification: Message, now: float) -> None:
        """An Observe notification: on a stream, just another response with the token."""
        if self.state is not ConnectionState.CLOSED:
            self._send_answer(notification, now)

    def _send_answer(self, response: Message, now: float) -> None:
        frame = encode_tcp(response)
        limit = self.remote.max_message_size
        if len(frame) > limit:
            # The peer said it cannot take this message; tell it so in a message it can.
            why = f"response of {len(frame)} bytes exceeds your Max-Message-Size of {limit}"
            frame = encode_tcp(Message(0, Code.INTERNAL_SERVER_ERROR, token=response.token,
                                       payload=why.encode()[:limit // 2]))
        self._queue(frame)
        self.last_activity = now

    def cancel(self, exchange: Exchange) -> None:
        """Forget an exchange: no events for it; its later responses are dropped."""
        self._finish(exchange)
        self._check_released()

    def release(self, now: float, diagnostic: str = "", alternative_address: str | None = None,
                hold_off: int | None = None) -> None:
        """Ask for an orderly close (7.04): in-flight exchanges may still finish."""
        if self.state is not ConnectionState.OPEN:
            return
        self._queue(encode_tcp(build_release(diagnostic, alternative_address, hold_off)))
        self._enter_release(now)

    def abort(self, diagnostic: str, bad_csm_option: int | None = None) -> None:
        """Send an Abort (7.05) with ``diagnostic`` and close; the transport then writes
        the outbox and closes the stream."""
        if self.state is ConnectionState.CLOSED:
            return
        info = AbortInfo(diagnostic, bad_csm_option)
        self._queue(encode_tcp(build_abort(diagnostic, bad_csm_option)))
        self.events.append(AbortSent(self.peer, info))
        self._close(f"aborted: {diagnostic}")

    def connection_lost(self, reason: str) -> None:
        """The stream ended under us (EOF, reset, TLS failure, local close)."""
        self._close(reason)

    # -- lifecycle ------------------------------------------------------------------------

    def _enter_release(self, now: float) -> None:
        if self.state is ConnectionState.OPEN:
            self.state = ConnectionState.RELEASING
            self._release_deadline = now + self.params.release_timeout
            self.timers_changed = True
        self._check_released()

    def _check_released(self) -> None:
        if (self.state is ConnectionState.RELEASING and not self._exchanges
                and not self.unanswered):
            self._close("released")

    def _close(self, reason: str) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        self.close_reason = reason
        exchanges = list(self._exchanges.values())
        self._exchanges.clear()
        self._timers.clear()
        for ex in exchanges:
            ex.done = True
            self.events.append(ExchangeFailed(ex, ConnectionLost(
                f"connection to {self.peer!r} ended: {reason}")))

    def _finish(self, ex: Exchange) -> None:
        if ex.done:
            return
        ex.done = True
        if self._exchanges.get(ex.token) is ex:
            del self._exchanges[ex.token]

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, ex: Exchange, deadline: float) -> None:
        ex.deadline = deadline
        self.timers_changed = True
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, ex))

    def next_deadline(self) -> float | None:
        p = self.params
        if self.state is ConnectionState.CLOSED:
            return None
        candidates: list[float] = []
        timers = self._timers
        while timers:
            deadline, _, ex = timers[0]
            if not ex.done and ex.deadline == deadline:
                candidates.append(deadline)
                break
            heapq.heappop(timers)
        if not self.csm_received:
            candidates.append(self.opened_at + p.csm_timeout)
        if self._frame_started is not None and p.frame_timeout is not None:
            candidates.append(self._frame_started + p.frame_timeout)
        if self.state is ConnectionState.RELEASING:
            candidates.append(self._release_deadline)
        if p.idle_timeout is not None:
            candidates.append(self.last_activity + p.idle_timeout)
        if p.keepalive_interval is not None:
            candidates.append(self._keepalive_sent + p.ping_timeout
                              if self._keepalive_token is not None
                              else self.last_received + p.keepalive_interval)
        return min(candidates) if candidates else None

    def handle_timers(self, now: float) -> None:
        p = self.params
        if self.state is ConnectionState.CLOSED:
            return
        if not self.csm_received and now >= self.opened_at + p.csm_timeout:
            self.abort(f"no CSM received within {p.csm_timeout:g}s")
            return
        started = self._frame_started
        if (started is not None and p.frame_timeout is not None
                and now >= started + p.frame_timeout):
            self.abort(f"frame not completed within {p.frame_timeout:g}s")
            return
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, ex = heapq.heappop(timers)
            if ex.done or ex.deadline != deadline:
                continue
            self._finish(ex)
            if ex.ping:
                what, waited = "Pong", ex.timeout or p.ping_timeout
            else:
                what, waited = "response", ex.timeout or p.request_timeout
            self.events.append(ExchangeFailed(ex, RequestTimeout(
                f"no {what} from {self.peer!r} within {waited:g}s")))
        if self.state is ConnectionState.RELEASING and now >= self._release_deadline:
            self._close("released")
            return
        self._check_released()
        if p.keepalive_interval is not None and self.state is ConnectionState.OPEN:
            if self._keepalive_token is not None:
                if now >= self._keepalive_sent + p.ping_timeout:
                    if self.last_received > self._keepalive_sent:
                        self._keepalive_token = None  # the peer is alive, just not Pong-ing
                    else:
                        self.abort(f"no answer to a keep-alive Ping within {p.ping_timeout:g}s")
                        return
            elif now >= self.last_received + p.keepalive_interval:
                self._keepalive_token = new_token()
                self._keepalive_sent = now
                self.timers_changed = True
                self._queue(encode_tcp(build_ping(self._keepalive_token)))
        if (p.idle_timeout is not None and self.state is ConnectionState.OPEN
                and now >= self.last_activity + p.idle_timeout):
            self.release(now, f"idle for {p.idle_timeout:g}s")
