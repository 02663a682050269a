"""The server's HTTP/2 listener: LwM2M over HTTP/2 behind the project's transport interface.

Devices reach the server; the server never connects to a device (so it works behind NAT).
Uplink requests (Register, Update, De-register, Send) are ordinary HTTP requests, served by
the same :class:`~aiolwm2m.transport.site.Site` resources as over CoAP after conversion
(:mod:`.messages`); requests to the device go in envelopes on its downlink stream
(:mod:`.downlink`) and come back as answers. To the LwM2M server this is one more
:class:`~aiolwm2m.transport.interface.Endpoint`: ``request``, ``observe_with`` and the rest
behave as on CoAP, so ``server.read(...)`` works unchanged.

What the endpoint needs to know about registrations (which one an address belongs to, who
may act for one, who is present) it asks a :class:`RegistrationAccess`
(:mod:`.server_binding` answers from the LwM2M server).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import h2.errors

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import RequestTimeout, ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange
from aiolwm2m.coap.observe import Observation
from aiolwm2m.coap.tcp_connection import ConnectionLost
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.transport.accept_errors import throttle_accept_errors
from aiolwm2m.transport.dispatch import RequestDispatcher
from aiolwm2m.transport.listener_probe import ListenerCheckFailed, loopback_for, probe_stream
from aiolwm2m.transport.listening import listening_address
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.stream_limits import (
    DEFAULT_STREAM_LIMITS,
    ConnectionQuota,
    StreamLimits,
)
from aiolwm2m.transport.tcp_link import peer_key

from . import identity as ids
from .answers import Answer, Rejection, decode_answers, encode_rejection
from .dedup import ReplyCache, request_key
from .downlink import CLOSED_TRAILER, Downlink, Pending
from .envelope import MEDIA_TYPE, EnvelopeError, SequenceSplitter
from .h2_state import PREFACE
from .limits import DEFAULT_HTTP2_LIMITS, Http2Limits
from .mapping import MULTIPART_CORE, MappingError, coap_code, content_format
from .messages import (
    OBSERVE_HEADER,
    PARTS_HEADER,
    STATUS_HEADER,
    HttpRefusal,
    HttpReply,
    HttpRequest,
    coap_request,
    http_reply,
    parse_parts,
    refusal_reply,
    response_from_answer,
    split_target,
    text_reply,
)
from .multipart import MultipartError, decode_multipart
from .server_connection import H2Peer, Http2ServerConnection
from .whole_responses import WholeResponses

log = logging.getLogger(__name__)

Address = tuple[Any, ...]
_SWEEP_INTERVAL = 1.0


class RegistrationAccess(Protocol):
    """What the endpoint asks its server about registrations."""

    def registration_of(self, remote: Address) -> str | None:
        """The id of the registration whose address ``remote`` is, if any."""

    def check(self, registration_id: str, peer: H2Peer, identity: str | None,
              query: list[str]) -> tuple[int, str] | None:
        """None when ``peer`` (as ``identity``) may act for the registration (open its
        downlink, answer its requests), as it may Update it (``query`` may name the
        endpoint, ``ep=``); else the HTTP status and words to refuse with. Refusals are
        counted and logged by the implementation."""

    def carries_registration(self, peer: H2Peer) -> bool:
        """Whether a silent connection stays open: it is a registration's address."""

    def presence_changed(self, registration_id: str, present: bool) -> None:
        """The registration's downlink stream opened (present) or ended."""

    def bearer_principal(self, credentials: str) -> str | None:
        """The principal a bearer token (h2c) authenticates, or None for a wrong one."""

    def refused(self, reason: str, peer: str, detail: str) -> None:
        """Count and log a refusal (never told to the peer in this detail)."""


class AnswerStream:
    """A device's open ``POST /{root}/{id}/responses`` upload (see :mod:`.answers`)."""

    __slots__ = ("refused", "registration_id")

    def __init__(self, registration_id: str) -> None:
        self.registration_id = registration_id
        #: Answers on it the server could not take (bounded by ``unmatched_answers``).
        self.refused = 0


class _Observed:
    __slots__ = ("registration_id", "sink")

    def __init__(self, registration_id: str | None, sink: Any) -> None:
        self.registration_id = registration_id
        self.sink = sink


class Http2Endpoint:
    """See the module docstring. ``tls_server`` (a ``TlsServerSecurity`` with ALPN h2)
    makes it https; without it, h2c with prior knowledge."""

    def __init__(self, *, site: Site, access: RegistrationAccess,
                 limits: Http2Limits = DEFAULT_HTTP2_LIMITS,
                 stream_limits: StreamLimits = DEFAULT_STREAM_LIMITS,
                 tls_server: Any = None, write_high_water: int = 64 * 1024,
                 write_buffer_limit: int = 4 * 1024 * 1024, device_root: str = "rd",
                 await_downlink: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        #: The first path segment of the device's own streams: ``/rd/{registration id}/...``
        #: on an LwM2M server, ``/bs/{endpoint name}/...`` on a Bootstrap-Server.
        self.device_root = device_root
        #: Requests to a device whose downlink stream is not open yet wait for it (within
        #: their timeout) instead of failing at once: a Bootstrap-Server's session starts
        #: as it answers the Bootstrap-Request, before the device can open its stream.
        self.await_downlink = await_downlink
        self.site = site
        self.access = access
        self.limits = limits
        self.stream_limits = stream_limits
        self.tls_server = tls_server
        self.scheme = "https" if tls_server is not None else "http2"
        self.write_high_water = write_high_water
        self.write_buffer_limit = max(write_buffer_limit, 2 * write_high_water)
        self.quota = ConnectionQuota(stream_limits)
        self.throttle = LogThrottle(log, interval=stream_limits.log_interval)
        self.dispatcher = RequestDispatcher(site, self, clock=self.loop.time,
                                            empty_ack_delay=None)
        self.dispatcher.block2 = WholeResponses()
        self.replies = ReplyCache(self.loop.time())
        self.closed = False
        self._server: asyncio.Server | None = None
        self._connections: set[Http2ServerConnection] = set()
        self._watched: set[Http2ServerConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._downlinks: dict[str, Downlink] = {}
        #: Each registration's answer streams (usually one; each bounded on its own, and
        #: all of a connection's by its stream and body limits), ended with it.
        self._answer_streams: dict[str, set[tuple[Http2ServerConnection, int]]] = {}
        self._answers_path_end = "/responses"
        self._device_prefix = f"/{device_root}/"
        self._waiting: dict[bytes, Pending] = {}
        self._observations: dict[bytes, _Observed] = {}
        # Uplink requests handed to the site: id(message) -> (message, conn, stream, key).
        self._answering: dict[int, tuple[Message, Http2ServerConnection, int, Hashable]] = {}
        self._probes: set[tuple[str, int]] = set()
        #: Called once when the endpoint closes (the server binding detaches here).
        self.on_close: Callable[[], None] | None = None

    @classmethod
    async def create(cls, host: str = "::", port: int = 0, *, backlog: int = 1024,
                     **kwargs: Any) -> Http2Endpoint:
        endpoint = cls(**kwargs)
        await endpoint._listen(host, port, backlog)
        return endpoint

    async def _listen(self, host: str, port: int, backlog: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # whose proto says TCP, and accepted sockets inherit it. With Nagle on, an answer
        # written while the device's previous frame is unacknowledged waits for its delayed
        # ACK: 40 ms per round trip.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        throttle_accept_errors(self.loop, self.stream_limits.log_interval)
        self._server = await self.loop.create_server(
            lambda: Http2ServerConnection(self), sock=sock, backlog=backlog)

    @property
    def port(self) -> int:
        address = listening_address(self._server)
        return int(address[1]) if address else 0

    @property
    def local_address(self) -> Address:
        return listening_address(self._server)

    def connections(self) -> list[H2Peer]:
        return [c.peer for c in self._connections if c.usable and not c.probe]

    def connection_at(self, address: Address) -> Http2ServerConnection | None:
        """The open connection from ``address`` (a registration's), if any. Registrations
        keep a plain ``(host, port)``: the compiled registry copies the address it is given
        into a new tuple, so the :class:`H2Peer` it came as is not there to ask."""
        key = peer_key(address)
        for conn in self._connections:
            if conn.peer == key and not conn.closing:
                return conn
        return None

    # -- connections ----------------------------------------------------------------------

    def connection_made(self, conn: Http2ServerConnection) -> bool:
        if self.closed:
            return False
        if peer_key(conn.peer) in self._probes:
            conn.probe = True
        else:
            refusal = self.quota.admit(conn.peer[0])
            if refusal is not None:
                self.refuse(refusal, conn, "connection closed at once: the cap is reached")
                return False
            conn.admitted = True
        self._connections.add(conn)
        self._watch(conn)
        return True

    def connection_closed(self, conn: Http2ServerConnection, reason: str) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self._watched.discard(conn)
        if conn.admitted:
            conn.admitted = False
            self.quota.release(conn.peer[0])
        if conn.downlinks:
            for sid, downlink in list(conn.downlinks.items()):
                self._downlink_ended(conn, sid, downlink)
        if conn.answer_streams:
            for sid in list(conn.answer_streams):
                self._close_answers(conn, sid, "")

    def refuse(self, reason: str, conn: Http2ServerConnection, detail: str) -> None:
        if not conn.probe:
            self.access.refused(reason, f"{conn.peer[0]}:{conn.peer[1]}", detail)

    def stream_gone(self, conn: Http2ServerConnection, stream_id: int) -> None:
        downlink = conn.downlinks.get(stream_id) if conn.downlinks else None
        if downlink is not None:
            self._downlink_ended(conn, stream_id, downlink)
        elif conn.answer_streams and stream_id in conn.answer_streams:
            self._close_answers(conn, stream_id, "")

    def _downlink_ended(self, conn: Http2ServerConnection, stream_id: int,
                        downlink: Downlink) -> None:
        if conn.downlinks:
            conn.downlinks.pop(stream_id, None)
        if downlink.conn is conn and downlink.stream_id == stream_id:
            downlink.detach()
            self.access.presence_changed(downlink.registration_id, False)
        if not conn.downlinks and not conn.closing:
            self._watch(conn)

    # -- requests from devices ------------------------------------------------------------

    def request_ready(self, conn: Http2ServerConnection, request: HttpRequest) -> None:
        core = conn.core
        assert core is not None
        if core.held or core.oldest_incomplete() is not None:
            self._watch(conn)
        sid = request.stream_id
        key: Hashable = None
        now = self.loop.time()
        try:
            if not self._authenticate(conn, request):
                return
            segments, query = split_target(request.path)
            device_stream = (len(segments) >= 3 and segments[0] == self.device_root
                             and segments[2] in ("requests", "responses"))
            msg = None if device_stream else coap_request(request, conn.peer)
            mid = request.headers.get(ids.HEADER)
            if mid is not None and request.method != "GET" and not request.streaming:
                if not ids.valid_identity(mid):
                    raise HttpRefusal(400, f"{ids.HEADER} must be 1-64 base64url characters")
                # A retry (same principal, same request) gets the first one's answer.
                key = request_key(request, conn.identity, mid)
                if not self.replies.begin(key, now, functools.partial(self._reply, conn, sid)):
                    return
            if msg is None:
                reply = self._device_stream(conn, request, segments, query)
                if reply is not None:
                    self._finish(conn, sid, key, reply)
                return
        except HttpRefusal as e:
            self._finish(conn, sid, key, refusal_reply(e))
            self.refuse(e.reason, conn, f"{request.method} {request.path[:64]}: {e.message}")
            return
        self._answering[id(msg)] = (msg, conn, sid, key)
        self.dispatcher.handle(msg, now)

    def _finish(self, conn: Http2ServerConnection, stream_id: int, key: Hashable,
                reply: HttpReply) -> None:
        if key is not None:
            self.replies.finish(key, reply, self.loop.time())
        self._reply(conn, stream_id, reply)

    def _authenticate(self, conn: Http2ServerConnection, request: HttpRequest) -> bool:
        """h2c bearer tokens: the first valid one names the connection's principal; a
        wrong one is answered 401 and closes the connection (one guess per connection)."""
        credentials = request.headers.get("authorization")
        if credentials is None or conn.tls is not None:
            return True
        principal = self.access.bearer_principal(credentials)
        if principal is not None and conn.identity in (None, principal):
            conn.identity = principal
            return True
        self.refuse("bad-credentials", conn, "bearer token refused" if principal is None
                    else f"bearer token for {principal} on a connection of {conn.identity}")
        reply = text_reply(401, "authentication failed")
        reply.headers.append(("www-authenticate", "Bearer"))
        self._reply(conn, request.stream_id, reply)
        conn.goaway("authentication failed")
        return False

    def _reply(self, conn: Http2ServerConnection, stream_id: int, reply: HttpReply) -> None:
        if conn.usable and conn.core is not None:
            conn.core.reply(stream_id, reply)
            conn.flush_soon()

    # -- ServerTransport (the dispatcher answers through these) -----------------------------

    def send_response(self, request: Message, response: Message) -> None:
        entry = self._answering.pop(id(request), None)
        if entry is None:
            return
        _, conn, stream_id, key = entry
        reply = http_reply(response, ids.identity_of(request.token) if request.token
                           else None)
        self._finish(conn, stream_id, key, reply)

    def acknowledge(self, request: Message) -> None:
        """Nothing to do: HTTP/2 has no empty acknowledgements."""

    def send_notification(self, observation: Observation, notification: Message) -> None:
        """The server offers nothing to observe over HTTP/2."""
        self.dispatcher.observer_lost(observation.peer, observation.token)

    # -- the device's own streams: downlink and answers ----------------------------------

    def _device_stream(self, conn: Http2ServerConnection, request: HttpRequest,
                       segments: tuple[str, ...], query: list[str]) -> HttpReply | None:
        """The answer to a downlink GET (None: the stream stays open) or an answer POST."""
        registration_id = segments[1]
        kind = segments[2]
        root = self.device_root
        if kind == "requests":
            if len(segments) != 3 or request.method != "GET":
                raise HttpRefusal(405, f"the downlink stream is GET /{root}/{{id}}/requests")
        elif len(segments) > 4 or request.method != "POST":
            raise HttpRefusal(405, f"answers are POST /{root}/{{id}}/responses[/{{identity}}]")
        if registration_id not in conn.authorized:
            denial = self.access.check(registration_id, conn.peer, conn.identity, query)
            if denial is not None:
                return text_reply(*denial)
            conn.authorized.add(registration_id)
        if kind == "requests":
            self._open_downlink(conn, request.stream_id, registration_id)
            return None
        if len(segments) == 4:
            return self._answer(conn, request, registration_id, segments[3])
        if request.streaming:
            self._open_answers(conn, request.stream_id, registration_id)
            return None
        if _is_sequence(request.headers.get("content-type")):
            return self._answer_sequence(conn, request, registration_id)
        return self._bundle(conn, request, registration_id)

    def _open_downlink(self, conn: Http2ServerConnection, stream_id: int,
                       registration_id: str) -> None:
        core = conn.core
        assert core is not None
        downlink = self._downlinks.get(registration_id)
        if downlink is None:
            downlink = self._downlinks[registration_id] = Downlink(registration_id,
                                                                   self.loop)
        was_open = downlink.open
        old = downlink.conn
        if old is not None:
            if old.downlinks:
                old.downlinks.pop(downlink.stream_id, None)
            downlink.close_stream("replaced by a newer downlink stream")
            if not old.downlinks:
                self._watch(old)
        if not core.open_stream(stream_id, [("content-type", MEDIA_TYPE),
                                            ("cache-control", "no-store")]):
            if was_open:
                self.access.presence_changed(registration_id, False)
            return
        if conn.downlinks is None:
            conn.downlinks = {}
        conn.downlinks[stream_id] = downlink
        self._watched.discard(conn)
        downlink.attach(conn, stream_id)
        conn.flush()
        if not was_open:
            self.access.presence_changed(registration_id, True)

    # -- the answer stream (see .answers) ----------------------------------------------------

    def is_upload(self, method: str, path: str, headers: dict[str, str]) -> bool:
        """An answer stream: ``POST /{root}/{id}/responses`` of ``application/cbor-seq``
        (its answers are taken as they arrive, not once the body is complete)."""
        return (method == "POST" and path.endswith(self._answers_path_end)
                and path.startswith(self._device_prefix)
                and _is_sequence(headers.get("content-type")))

    def _open_answers(self, conn: Http2ServerConnection, stream_id: int,
                      registration_id: str) -> None:
        core = conn.core
        assert core is not None
        # A second one does not replace the first (unlike a downlink stream, it does not
        # say where anything goes): answers already written on the first would be lost.
        if not core.open_stream(stream_id, [("content-type", MEDIA_TYPE),
                                            ("cache-control", "no-store")]):
            return
        if conn.answer_streams is None:
            conn.answer_streams = {}
        conn.answer_streams[stream_id] = AnswerStream(registration_id)
        self._answer_streams.setdefault(registration_id, set()).add((conn, stream_id))
        conn.flush()

    def _close_answers(self, conn: Http2ServerConnection, stream_id: int,
                       reason: str) -> None:
        """Forget an answer stream; with a ``reason``, end it from our side too."""
        streams = conn.answer_streams
        state = streams.pop(stream_id, None) if streams else None
        if state is None:
            return
        streams_of = self._answer_streams.get(state.registration_id)
        if streams_of is not None:
            streams_of.discard((conn, stream_id))
            if not streams_of:
                del self._answer_streams[state.registration_id]
        if reason and conn.usable and conn.core is not None:
            conn.core.stop_upload(stream_id, [(CLOSED_TRAILER, reason)])
            conn.flush_soon()

    def answer_items(self, conn: Http2ServerConnection, stream_id: int,
                     items: list[bytes]) -> None:
        """Answers arriving on an answer stream: each delivered, or a rejection written
        back; a malformed item, or too many rejections, ends the stream."""
        state = conn.answer_streams.get(stream_id) if conn.answer_streams else None
        if state is None or conn.core is None:
            return  # refused when it opened (404...), or closed since
        try:
            rejections = self._take_answers(conn, state.registration_id, items)
        except EnvelopeError as e:
            self.refuse("http2-bad-answer", conn, f"answer stream: {e}")
            self._close_answers(conn, stream_id, str(e))
            return
        if not rejections:
            return
        state.refused += len(rejections)
        if state.refused > self.limits.unmatched_answers:
            self.refuse("http2-unmatched-answers", conn, f"over "
                        f"{self.limits.unmatched_answers} answers to nothing on one stream")
            self._close_answers(conn, stream_id, "too many answers to no request")
            return
        conn.core.write(stream_id, b"".join([encode_rejection(r) for r in rejections]))
        conn.flush_soon()

    def _take_answers(self, conn: Http2ServerConnection, registration_id: str,
                      items: list[bytes]) -> list[Rejection]:
        rejections: list[Rejection] = []
        peer = conn.peer
        for body in items:
            for answer in decode_answers(body):
                rejection = self._take_answer(registration_id, answer, peer)
                if rejection is not None:
                    rejections.append(rejection)
        return rejections

    def _take_answer(self, registration_id: str, answer: Answer, peer: H2Peer
                     ) -> Rejection | None:
        try:
            code = coap_code(answer.status)
        except MappingError as e:
            return Rejection(answer.identity, 400, str(e))
        msg = Message(MessageType.ACK, code, 0, ids.token_of(answer.identity), None,
                      answer.payload, peer)
        if answer.observe is not None:
            msg.observe = answer.observe
        if answer.payload and answer.content_format is not None:
            msg.content_format = answer.content_format
        if self._deliver(registration_id, msg):
            return None
        return Rejection(answer.identity, 404, "unknown identity")

    def answers_ended(self, conn: Http2ServerConnection, stream_id: int, error: str
                      ) -> None:
        """The device ended its answer stream (or broke its framing: ``error``)."""
        if error:
            if conn.answer_streams and stream_id in conn.answer_streams:
                self.refuse("http2-bad-answer", conn, f"answer stream: {error}")
            self._close_answers(conn, stream_id, error)
            return
        if conn.answer_streams and stream_id in conn.answer_streams:
            self._close_answers(conn, stream_id, "")
            if conn.core is not None:
                conn.core.finish(stream_id)
                conn.flush_soon()

    def _answer_sequence(self, conn: Http2ServerConnection, request: HttpRequest,
                         registration_id: str) -> HttpReply:
        """A whole answer sequence in one request (what curl sends): 204 when every answer
        was taken, else 200 with the rejections."""
        try:
            items = SequenceSplitter(self.limits.max_body).feed(request.body)
            rejections = self._take_answers(conn, registration_id, items)
        except EnvelopeError as e:
            raise HttpRefusal(400, str(e)) from None
        if not rejections:
            return HttpReply(204)
        return HttpReply(200, [("content-type", MEDIA_TYPE)],
                         b"".join([encode_rejection(r) for r in rejections]))

    def _answer(self, conn: Http2ServerConnection, request: HttpRequest,
                registration_id: str, mid: str) -> HttpReply:
        if not ids.valid_identity(mid):
            raise HttpRefusal(404, "no request with this identity")
        headers = request.headers
        msg = response_from_answer(headers.get(STATUS_HEADER), headers.get(OBSERVE_HEADER),
                                   headers.get("content-type"), request.body,
                                   ids.token_of(mid), conn.peer)
        if self._deliver(registration_id, msg):
            return HttpReply(204)
        return text_reply(404, "no request with this identity")

    def _bundle(self, conn: Http2ServerConnection, request: HttpRequest,
                registration_id: str) -> HttpReply:
        """Several answers in one ``application/multipart-core`` body (HTT-002)."""
        headers = request.headers
        try:
            fmt = content_format(headers.get("content-type", ""))
        except MappingError:
            fmt = -1
        if fmt != MULTIPART_CORE:
            raise HttpRefusal(415, "a bundle of answers is application/multipart-core",
                              "unsupported-content-format")
        described = parse_parts(headers.get(PARTS_HEADER, ""), 256)
        try:
            parts = decode_multipart(request.body)
        except MultipartError as e:
            raise HttpRefusal(400, str(e)) from None
        if len(parts) != len(described):
            raise HttpRefusal(400, f"{PARTS_HEADER} describes {len(described)} parts, the "
                              f"body holds {len(parts)}")
        messages = []
        for (mid, status, observe), (fmt_i, payload) in zip(described, parts, strict=True):
            msg = response_from_answer(status, observe, None, payload or b"",
                                       ids.token_of(mid), conn.peer)
            if payload is not None and fmt_i is not None:
                msg.content_format = fmt_i
            messages.append((mid, msg))
        unknown = [mid for mid, msg in messages if not self._deliver(registration_id, msg)]
        if not unknown:
            return HttpReply(204)
        reply = text_reply(404, f"{len(unknown)} of {len(messages)} parts answer no request "
                           "of ours")
        reply.headers.append(("lwm2m-unknown", ", ".join(unknown)))
        return reply

    def _deliver(self, registration_id: str, msg: Message) -> bool:
        token = msg.token
        pending = self._waiting.get(token)
        if pending is not None and pending.downlink.registration_id == registration_id:
            del self._waiting[token]
            pending.downlink.answered(token)
            if pending.future is not None:
                if not pending.future.done():
                    pending.future.set_result(msg)
                return True
            sink = pending.sink
            if msg.observe is not None and Code.CREATED <= msg.code < Code.BAD_REQUEST:
                self._observations[token] = _Observed(registration_id, sink)
            sink.on_response(msg)
            return True
        observed = self._observations.get(token)
        if observed is None:
            return False
        if observed.registration_id is None:
            # Resumed after a restart: bound to the first registration that answers.
            observed.registration_id = registration_id
        elif observed.registration_id != registration_id:
            return False
        if msg.observe is None or msg.code >= Code.BAD_REQUEST:
            del self._observations[token]
        observed.sink.on_response(msg)
        return True

    # -- requests to devices: the Endpoint interface ---------------------------------------

    def new_token(self) -> bytes:
        return ids.token_of(ids.new_identity())

    def identity_of(self, remote: Address) -> str | None:
        conn = getattr(remote, "conn", None)
        return conn.identity if isinstance(conn, Http2ServerConnection) else None

    def has_downlink(self, registration_id: str) -> bool:
        downlink = self._downlinks.get(registration_id)
        return downlink is not None and downlink.open

    def _downlink_for(self, remote: Address) -> Downlink:
        if self.closed:
            raise ConnectionLost("endpoint is closed")
        registration_id = self.access.registration_of(remote)
        downlink = self._downlinks.get(registration_id) if registration_id else None
        if (downlink is None and registration_id is not None and self.await_downlink
                and len(self._downlinks) < self.limits.awaited_downlinks):
            downlink = self._downlinks[registration_id] = Downlink(registration_id, self.loop)
        if downlink is None or not (downlink.open or self.await_downlink):
            raise ConnectionLost("the device has no downlink stream open (it sleeps)")
        if len(downlink.unanswered) >= self.limits.downlink_pending:
            raise ServiceUnavailable(f"{self.limits.downlink_pending} requests to the device "
                                     "are in flight already")
        conn = downlink.conn
        if conn is not None and conn.core is not None and (
                conn.core.unsent(downlink.stream_id) + downlink.backlog
                > self.limits.max_envelope):
            # It does not open its flow-control window: what we write would only pile up.
            raise ServiceUnavailable("the device does not read its downlink stream")
        return downlink

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message:
        """Send ``request`` on the device's downlink stream and return its answer; a new
        downlink stream before the answer gets it again, once (same identity)."""
        downlink = self._downlink_for(remote)
        if not request.token:
            request.token = self.new_token()
        future: asyncio.Future[Message] = self.loop.create_future()
        pending = Pending(downlink, request, future, None)
        token = request.token
        self._waiting[token] = pending
        downlink.send(pending)
        # A timer that fails the future (cheaper per request than asyncio.timeout, and,
        # unlike wait_for, it cannot swallow a cancellation of the caller).
        timer = self.loop.call_later(timeout if timeout is not None
                                     else self.limits.answer_timeout, _overdue, future)
        try:
            return await future
        finally:
            timer.cancel()
            if self._waiting.get(token) is pending:
                del self._waiting[token]
                downlink.unanswered.pop(token, None)

    async def observe_with(self, request: Message, remote: Address, sink: Any) -> Exchange:
        downlink = self._downlink_for(remote)
        if not request.token:
            request.token = self.new_token()
        if request.observe is None:
            request.observe = 0
        pending = Pending(downlink, request, None, sink)
        exchange = pending.exchange = Exchange(request, remote, None)
        self._waiting[request.token] = pending
        downlink.send(pending)
        self.loop.call_later(self.limits.answer_timeout, self._observe_overdue, pending)
        return exchange

    def _observe_overdue(self, pending: Pending) -> None:
        token = pending.message.token
        if self._waiting.get(token) is pending:
            del self._waiting[token]
            pending.downlink.unanswered.pop(token, None)
            pending.fail(RequestTimeout("no answer to the observe request in time"))

    async def resume_observation(self, request: Message, remote: Address, sink: Any
                                 ) -> Exchange:
        """After a restart: notifications carrying ``request.token`` go to ``sink`` again
        (the device posts them whichever connection it comes back on)."""
        self._observations[request.token] = _Observed(self.access.registration_of(remote),
                                                      sink)
        return Exchange(request, remote, None)

    def forget(self, exchange: Exchange) -> None:
        token = exchange.token
        self._observations.pop(token, None)
        pending = self._waiting.pop(token, None)
        if pending is not None:
            pending.downlink.unanswered.pop(token, None)

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                              timeout: float | None = None) -> Message:
        return first  # messages travel whole over HTTP/2

    def registration_ended(self, registration_id: str, reason: str) -> None:
        """The registration is gone: end its downlink stream, fail what it never answered."""
        for conn, stream_id in list(self._answer_streams.get(registration_id, ())):
            self._close_answers(conn, stream_id, reason)
        downlink = self._downlinks.pop(registration_id, None)
        if downlink is None:
            return
        if downlink.conn is not None and downlink.conn.downlinks:
            downlink.conn.downlinks.pop(downlink.stream_id, None)
        downlink.close_stream(reason)
        for token in list(downlink.unanswered):
            self._waiting.pop(token, None)
        downlink.fail_all(ConnectionLost(f"the registration ended ({reason})"))
        for token in [t for t, o in self._observations.items()
                      if o.registration_id == registration_id]:
            del self._observations[token]

    # -- timers ---------------------------------------------------------------------------

    def _watch(self, conn: Http2ServerConnection) -> None:
        """Check ``conn`` each second (handshake, idle, overdue bodies) until it holds a
        downlink stream and nothing incomplete: idle devices then cost no timer work."""
        self._watched.add(conn)
        if self._sweeper is None and not self.closed:
            self._sweeper = self.loop.call_later(_SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.loop.time()
        idle_limit = self.stream_limits.unbound_idle_timeout
        for conn in list(self._watched):
            if conn.closing:
                self._watched.discard(conn)
                continue
            if conn.handshake_overdue(now):
                conn.abandon(f"TLS handshake not completed within "
                             f"{self.stream_limits.handshake_timeout:g}s", None)
                continue
            core = conn.core
            if core is None:
                continue
            if core.oldest_incomplete() is not None and core.expire_incomplete(now):
                self.refuse("http2-slow-request", conn, "request body not complete within "
                            f"{self.limits.request_timeout:g}s")
                conn.flush()
            has_downlink = bool(conn.downlinks)
            if (idle_limit is not None and not has_downlink and not conn.probe
                    and now - conn.last_active >= idle_limit
                    and not self.access.carries_registration(conn.peer)):
                self.throttle.info("idle", "closing the HTTP/2 connection from %r: idle for "
                                   "%gs without a registration", conn.peer, idle_limit)
                conn.goaway("idle without a registration")
                continue
            if has_downlink and core.oldest_incomplete() is None:
                self._watched.discard(conn)
        if self._watched and not self.closed:
            self._sweeper = self.loop.call_later(_SWEEP_INTERVAL, self._sweep)

    # -- lifecycle ------------------------------------------------------------------------

    async def self_check(self, timeout: float = 5.0) -> None:
        """Connect over loopback and check the listener answers as it should: the server's
        SETTINGS for the HTTP/2 preface (h2c), a TLS record for a ClientHello (https)."""
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
            key: tuple[str, int] | None = None
            try:
                sock.setblocking(False)
                sock.bind((host, 0))
                key = peer_key(sock.getsockname())
                self._probes.add(key)
                target = (host, int(address[1]))
                if self.tls_server is not None:
                    await probe_stream(sock, target, True, timeout)
                else:
                    await _probe_h2c(sock, target, timeout)
                return
            except OSError as e:
                failure = e
            finally:
                sock.close()
                if key is not None:
                    self._probes.discard(key)
        raise ListenerCheckFailed(f"cannot reach it over loopback: {failure}")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.dispatcher.close()
        error = ConnectionLost("the HTTP/2 endpoint closed")
        for downlink in self._downlinks.values():
            downlink.fail_all(error)
        self._downlinks.clear()
        self._waiting.clear()
        for conn in list(self._connections):
            if conn.core is not None and not conn.core.closed:
                conn.core.goaway(h2.errors.ErrorCodes.NO_ERROR, "server shutting down")
                conn.flush()
            elif conn.transport is not None:
                conn.transport.close()
        for _ in range(3):
            await asyncio.sleep(0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self.tls_server is not None:
            self.tls_server.close()
        if self.on_close is not None:
            self.on_close()


def _overdue(future: asyncio.Future[Message]) -> None:
    if not future.done():
        future.set_exception(RequestTimeout("no answer in time"))


def _is_sequence(content_type: str | None) -> bool:
    return content_type is not None and (
        content_type == MEDIA_TYPE
        or content_type.partition(";")[0].strip().lower() == MEDIA_TYPE)


async def _probe_h2c(sock: socket.socket, address: tuple[str, int], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
            # The preface, then an empty SETTINGS frame (length 0, type 4, no flags).
            await loop.sock_sendall(sock, PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            data = b""
            while len(data) < 9:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ListenerCheckFailed("it closed the connection without answering "
                                              "the HTTP/2 preface")
                data += chunk
            if data[3] != 4:
                raise ListenerCheckFailed("it answered the HTTP/2 preface with something "
                                          "other than SETTINGS")
    except TimeoutError:
        raise ListenerCheckFailed(f"no answer to the HTTP/2 preface within {timeout:g}s"
                                  ) from None
    except OSError as e:
        raise ListenerCheckFailed(f"the HTTP/2 preface failed: {e.strerror or e}") from None


__all__ = ["Http2Endpoint", "RegistrationAccess"]
