"""The device side of LwM2M over HTTP/2: the client library's transport for ``http2://``
(h2c with prior knowledge) and ``https://`` (TLS with ALPN h2) servers.

To the client it looks like its other endpoints: ``request()`` sends a CoAP-shaped request
and returns a CoAP-shaped response, and the server's requests reach the account's site
through a :class:`~aiolwm2m.transport.dispatch.RequestDispatcher`. Underneath:

* every request carries a new message identity; if the connection breaks before the answer,
  it is sent once more, with the same identity, on a new connection (the server answers the
  retry from its duplicate cache if it had carried the first one out);
* after a Register (2.01) and every successful Update it keeps the downlink stream
  ``GET /rd/{id}/requests`` open; while asleep (queue mode) it closes it;
* requests arriving in envelopes are carried out once per identity (a request the server
  writes again after a reconnect gets the answer given the first time), and answered with
  ``POST /rd/{id}/responses/{identity}``; answers and notifications ready in the same loop
  iteration go together in one ``application/multipart-core`` bundle (HTT-002);
* with the downlink stream it opens an answer stream, ``POST /rd/{id}/responses`` of
  ``application/cbor-seq`` (:mod:`.answers`), and once the server accepts it (200) writes
  the answers to the server's requests there, one item each: a DATA frame per answer
  instead of a request and its response. An answer lost with a broken connection comes
  back as the server writes the request again (same identity) on the next downlink stream.
  Notifications keep their own POSTs, which are sent once more after a broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, cast

import h2.exceptions

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import CoapError, RequestTimeout
from aiolwm2m.coap.generational_cache import MISSING, GenerationalCache
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.observe import Observation
from aiolwm2m.coap.tcp_connection import ConnectionLost
from aiolwm2m.security import TlsClientConnection
from aiolwm2m.security.credentials import Credentials
from aiolwm2m.transport.dispatch import RequestDispatcher
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tls import TlsStream

from . import identity as ids
from .answers import Answer, decode_rejection, encode_answers
from .client_core import (
    ClientCore,
    ConnectionOver,
    ResponseComplete,
    ResponseHead,
    StreamClosed,
    StreamData,
)
from .dedup import DEDUP_LIFETIME
from .envelope import MEDIA_TYPE, EnvelopeError, EnvelopeReader, SequenceSplitter
from .limits import DEFAULT_HTTP2_LIMITS, Http2Limits
from .mapping import (
    MULTIPART_CORE,
    MappingError,
    coap_code,
    content_format,
    http_status,
    media_type,
)
from .messages import (
    PARTS_HEADER,
    HttpRefusal,
    answer_headers,
    format_parts,
    join_target,
    method_name,
    request_from_downlink,
    split_target,
)
from .multipart import encode_multipart
from .whole_responses import WholeResponses

log = logging.getLogger(__name__)

ALPN_H2 = "h2"


class TlsSettings:
    """How the device authenticates over https (as for coaps+tcp, with ALPN h2)."""

    def __init__(self, credentials: Credentials, *, server_name: str | None = None,
                 server_public_key: bytes | None = None) -> None:
        self.credentials = credentials
        self.server_name = server_name
        self.server_public_key = server_public_key

    def connect(self, peer: Any, now: float) -> TlsStream:
        engine = TlsClientConnection(
            self.credentials, alpn=(ALPN_H2,), server_name=self.server_name,
            server_public_key=self.server_public_key, peer=peer)
        stream = TlsStream(engine)
        stream._absorb(engine.start(now))
        return stream


class _Connection(asyncio.Protocol):
    """One connection to the server: bytes through TLS (https) to a :class:`ClientCore`."""

    def __init__(self, endpoint: Http2ClientEndpoint) -> None:
        self.endpoint = endpoint
        self.loop = endpoint.loop
        self.core = ClientCore(endpoint.limits, endpoint.authority, endpoint.http_scheme)
        self.transport: asyncio.Transport | None = None
        self.tls: TlsStream | None = None
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.waiters: dict[int, asyncio.Future[ResponseComplete]] = {}
        self.closed = False
        self.reason = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        settings = self.endpoint.tls
        if settings is not None:
            self.tls = settings.connect(self.endpoint.address, self.loop.time())
            self._write(self.tls.outgoing())
            return
        self._started()

    def _started(self) -> None:
        if self.tls is not None:
            alpn = self.tls.alpn
            if alpn != ALPN_H2:
                self.fail(f"the server did not agree to HTTP/2 (ALPN {alpn!r})")
                return
        self.flush()
        if not self.ready.done():
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        tls = self.tls
        if tls is not None:
            was = tls.established
            data = tls.receive(data, self.loop.time())
            self._write(tls.outgoing())
            if tls.failure is not None:
                self.fail(tls.failure)
                return
            if not was and tls.established:
                self._started()
            if not data:
                return
        for event in self.core.receive(data):
            if isinstance(event, ResponseComplete):
                waiter = self.waiters.pop(event.stream_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
            elif isinstance(event, StreamClosed):
                waiter = self.waiters.pop(event.stream_id, None)
                if waiter is not None:
                    if not waiter.done():
                        waiter.set_exception(ConnectionLost(event.reason))
                else:
                    self.endpoint._stream_closed(self, event.stream_id, event.reason)
            elif isinstance(event, ResponseHead):
                self.endpoint._downlink_head(self, event)
            elif isinstance(event, StreamData):
                self.endpoint._downlink_data(self, event.stream_id, event.data)
            elif isinstance(event, ConnectionOver):
                self.reason = event.reason
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.reason:
            self.reason = f"connection lost: {exc}" if exc else "closed by the server"
        if self.tls is not None and self.tls.failure is not None:
            self.reason = self.tls.failure
        error = ConnectionLost(self.reason)
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.waiters.clear()
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()
        if self.tls is not None and not self.tls.closed:
            self.tls.close()
        self.endpoint._connection_lost(self, self.reason)

    def fail(self, reason: str) -> None:
        self.reason = reason
        if self.transport is not None:
            self.transport.close()

    def flush(self) -> None:
        data = self.core.data_to_send()
        if data and (self.tls is None or self.tls.established):
            if self.tls is not None:
                self.tls.send(data)
                data = self.tls.outgoing()
            self._write(data)
        if self.core.closed and self.transport is not None and not self.closed:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    @property
    def usable(self) -> bool:
        return not self.closed and not self.core.closed and self.ready.done() and (
            self.ready.exception() is None)

    def exchange(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
                 ) -> asyncio.Future[ResponseComplete]:
        sid = self.core.request(method, path, headers, body)
        waiter: asyncio.Future[ResponseComplete] = self.loop.create_future()
        self.waiters[sid] = waiter
        self.flush()
        return waiter

    def close(self) -> None:
        if self.closed:
            return
        self.core.close()
        self.flush()
        if self.transport is not None:
            self.transport.close()


class Http2ClientEndpoint:
    """See the module docstring. ``address`` is the server's (host, port): the ``remote``
    of every request from it. ``bearer`` authenticates h2c requests (see
    :func:`aiolwm2m.http2.server_binding.bearer_token`); ``on_lost`` hears of a connection
    that ended without our asking."""

    #: Whether to open an answer stream with the downlink stream (False: every answer is a
    #: POST of its own, as for a server that refuses the stream; tests and the benchmark
    #: compare the two).
    use_answer_stream = True

    def __init__(self, host: str, port: int, *, site: Site | None = None,
                 tls: TlsSettings | None = None, bearer: str | None = None,
                 limits: Http2Limits = DEFAULT_HTTP2_LIMITS,
                 on_lost: Callable[[], None] | None = None, connect_timeout: float = 10.0,
                 on_request: Callable[[Message], None] | None = None,
                 local_host: str | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.address = (host, port)
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.tls = tls
        self.http_scheme = "https" if tls is not None else "http"
        self.bearer = bearer
        self.limits = limits
        self.on_lost = on_lost
        self.connect_timeout = connect_timeout
        self.site = site
        #: Instead of a site: requests from the server go here, and their answers come
        #: back through :meth:`send_response` (the simulator's devices).
        self.on_request = on_request
        self.local_host = local_host
        self._dispatcher: RequestDispatcher | None = None
        self.closed = False
        #: The registration's location (``("rd", id)``) while registered.
        self.location: tuple[str, ...] | None = None
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._downlink: tuple[_Connection, int] | None = None
        self._downlink_wanted = False
        #: The server refused our downlink stream as not ours (404) since the last Register.
        self._downlink_refused = False
        self._reader = EnvelopeReader(limits.max_envelope)
        # Requests from the server by token: None while carried out, then our answer.
        self._handled: GenerationalCache[Message | None] = GenerationalCache(
            DEDUP_LIFETIME, 4096, self.loop.time(), 1 << 20)
        self._answers: list[Message] = []
        self._answers_scheduled = False
        #: The answer stream: (connection, stream) once opened, and whether the server
        #: accepted it (200); answers to its requests waiting for this iteration's write.
        self._answer_stream: tuple[_Connection, int] | None = None
        self._answer_stream_ready = False
        #: The location the answer stream was opened for (a new registration opens its own).
        self._answer_location: tuple[str, ...] | None = None
        self._rejections = SequenceSplitter(limits.max_envelope)
        self._streamed: list[Message] = []
        #: The server forgot an observation we notified (with ``on_request`` only).
        self.on_observation_lost: Callable[[bytes], None] | None = None
        self._asleep = False
        self._in_flight = 0
        self._tasks = BackgroundTasks(log, "HTTP/2 client work")

    @property
    def dispatcher(self) -> RequestDispatcher:
        """Serves the site (made on first use: devices of the simulator have none)."""
        if self._dispatcher is None:
            if self.site is None:
                raise RuntimeError("this endpoint serves no site")
            self._dispatcher = RequestDispatcher(self.site, self, clock=self.loop.time,
                                                 empty_ack_delay=None)
            self._dispatcher.block2 = WholeResponses()
        return self._dispatcher

    # -- connections ----------------------------------------------------------------------

    async def _connection(self) -> _Connection:
        if self.closed:
            raise ConnectionLost("the endpoint is closed")
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Connection:
        host, port = self.address
        conn = _Connection(self)
        try:
            local = (self.local_host, 0) if self.local_host is not None else None
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the awaited future completes (a client stopping would then
            # keep running).
            async with asyncio.timeout(self.connect_timeout):
                await self.loop.create_connection(lambda: conn, host, port, local_addr=local)
            async with asyncio.timeout(self.connect_timeout + 20.0):
                await asyncio.shield(conn.ready)
        except (OSError, TimeoutError) as e:
            conn.fail(str(e))
            raise ConnectionLost(f"cannot connect to {self.authority}: {e}") from e
        self._conn = conn
        return conn

    def _connection_lost(self, conn: _Connection, reason: str) -> None:
        if self._conn is conn:
            self._conn = None
        if self._downlink is not None and self._downlink[0] is conn:
            self._downlink = None
            self._reader = EnvelopeReader(self.limits.max_envelope)
        if self._answer_stream is not None and self._answer_stream[0] is conn:
            self._answer_stream = None
        if not self.closed and conn.ready.done() and self.on_lost is not None:
            log.info("HTTP/2 connection to %s ended: %s", self.authority, reason)
            self.on_lost()

    # -- requests to the server -----------------------------------------------------------

    def _auth(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.bearer is not None and self.tls is None:
            headers.append(("authorization", f"Bearer {self.bearer}"))
        return headers

    async def _post(self, method: str, path: str, headers: list[tuple[str, str]],
                    body: bytes, timeout: float | None, *, once: bool = False
                    ) -> ResponseComplete:
        """One request; sent again once, as it is, if the connection breaks first
        (``once``: this is that second sending)."""
        self._in_flight += 1
        try:
            for attempt in ((2,) if once else (1, 2)):
                conn = await self._connection()
                try:
                    async with asyncio.timeout(timeout or self.limits.answer_timeout):
                        return await conn.exchange(method, path, headers, body)
                except ConnectionLost:
                    if attempt == 2 or self.closed:
                        raise
                    log.info("retrying %s %s (identity %s) on a new connection", method,
                             path[:40], dict(headers).get(ids.HEADER))
            raise AssertionError("unreachable")
        except TimeoutError:
            raise RequestTimeout(f"no answer from {self.authority} in time") from None
        finally:
            self._in_flight -= 1

    async def request(self, request: Message, remote: Any = None, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message:
        headers = self._auth([(ids.HEADER, ids.new_identity())])
        if request.payload:
            fmt = request.content_format
            headers.append(("content-type", media_type(fmt if fmt is not None else 42)))
        if request.accept is not None:
            headers.append(("accept", media_type(request.accept)))
        path = join_target(request.uri_path, request.uri_query)
        done = await self._post(method_name(request.code), path, headers, request.payload,
                                timeout)
        response = self._response(request, done)
        self._track(request, response)
        return response

    def _response(self, request: Message, done: ResponseComplete) -> Message:
        try:
            code = coap_code(done.status)
        except MappingError as e:
            raise CoapError(f"{self.authority} answered {e}") from None
        msg = Message(MessageType.ACK, code, 0, request.token, None, done.body, self.address)
        headers = done.headers
        ctype = headers.get("content-type")
        if ctype is not None and done.body:
            with contextlib.suppress(MappingError):
                msg.content_format = content_format(ctype)
        location = headers.get("location")
        if location is not None:
            with contextlib.suppress(HttpRefusal):
                msg.location_path = split_target(location)[0]
        retry = headers.get("retry-after")
        if retry is not None and retry.isdigit() and len(retry) < 10:
            msg.max_age = int(retry)
        return msg

    def _track(self, request: Message, response: Message) -> None:
        """Follow the registration: its location, and whether to hold a downlink stream."""
        path = request.uri_path
        code = response.code
        if request.code == Code.POST and path[-1:] == ("rd",) and code == Code.CREATED:
            self.location = response.location_path
            self._downlink_refused = False
            self._handled = GenerationalCache(DEDUP_LIFETIME, 4096, self.loop.time(), 1 << 20)
            self._want_downlink()
        elif request.code == Code.POST and path == ("bs",) and code == Code.CHANGED:
            # Bootstrap-Request accepted: the session's requests come on /bs/{ep}/requests.
            name = next((q[3:] for q in request.uri_query if q.startswith("ep=")), "")
            if name:
                self.location = ("bs", name)
                self._downlink_refused = False
                self._want_downlink()
        elif self.location is not None and path == self.location:
            if (request.code == Code.DELETE and code == Code.DELETED) or (
                    code == Code.NOT_FOUND):
                self.location = None
                self._close_downlink()
            elif request.code == Code.POST and code == Code.CHANGED:
                self._want_downlink()

    # -- the downlink stream --------------------------------------------------------------

    def _want_downlink(self) -> None:
        self._downlink_wanted = True
        if self._asleep or self.location is None or self._downlink is not None:
            return
        self._tasks.spawn(self._open_downlink())

    async def _open_downlink(self) -> None:
        if self._downlink is not None or self.location is None:
            return
        conn = await self._connection()
        if self._downlink is not None or self.location is None or self._asleep:
            return
        path = join_target((*self.location, "requests"), [])
        sid = conn.core.request("GET", path, self._auth([("accept", "application/cbor-seq")]),
                                b"", streaming=True)
        self._downlink = (conn, sid)
        self._reader = EnvelopeReader(self.limits.max_envelope)
        if self._answer_stream is not None and self._answer_location != self.location:
            self._close_answer_stream()
        if self._answer_stream is None and self.use_answer_stream:
            self._open_answer_stream(conn)
        conn.flush()

    def _open_answer_stream(self, conn: _Connection) -> None:
        assert self.location is not None
        path = join_target((*self.location, "responses"), [])
        try:
            sid = conn.core.request("POST", path, self._auth([("content-type", MEDIA_TYPE)]),
                                    b"", streaming=True, upload=True)
        except h2.exceptions.ProtocolError:
            return  # no stream to spare: answers go as POSTs
        self._answer_stream = (conn, sid)
        self._answer_stream_ready = False
        self._answer_location = self.location
        self._rejections = SequenceSplitter(self.limits.max_envelope)

    def _close_answer_stream(self) -> None:
        answers, self._answer_stream = self._answer_stream, None
        if answers is not None:
            conn, sid = answers
            conn.core.end_upload(sid)
            conn.flush()

    def _close_downlink(self) -> None:
        self._downlink_wanted = False
        downlink, self._downlink = self._downlink, None
        self._close_answer_stream()
        if downlink is not None:
            conn, sid = downlink
            conn.core.cancel(sid)
            conn.flush()

    def _downlink_head(self, conn: _Connection, head: ResponseHead) -> None:
        if self._answer_stream == (conn, head.stream_id):
            if head.status == 200:
                self._answer_stream_ready = True
            else:
                # Not accepted (a server without answer streams): answers go as POSTs.
                log.info("the server refused the answer stream: HTTP %d", head.status)
                self._answer_stream = None
            return
        if self._downlink != (conn, head.stream_id) or head.status == 200:
            return
        log.warning("the server refused the downlink stream: HTTP %d", head.status)
        self._downlink = None  # what follows is the refusal's text, not envelopes
        if head.status == 404 and not self._downlink_refused and self.on_lost is not None:
            # The registration is not ours from this connection: a NoSec Register retried
            # after a broken connection got the first one's answer, bound to the old
            # address. An Update now finds out (4.04) and registers again, instead of the
            # device staying unreachable until its next periodic Update. Once per Register.
            self._downlink_refused = True
            self.on_lost()

    def _downlink_data(self, conn: _Connection, stream_id: int, data: bytes) -> None:
        if self._downlink != (conn, stream_id):
            if self._answer_stream == (conn, stream_id):
                self._answer_rejections(data)
            return
        try:
            envelopes = self._reader.feed(data)
        except EnvelopeError as e:
            log.warning("malformed downlink envelope from %s: %s", self.authority, e)
            self._close_downlink()
            return
        now = self.loop.time()
        for requests in envelopes:
            for wire in requests:
                self._serve(request_from_downlink(wire, self.address), now)

    def _answer_rejections(self, data: bytes) -> None:
        """Answers the server could not take (see :mod:`.answers`)."""
        try:
            rejections = [decode_rejection(item) for item in self._rejections.feed(data)]
        except EnvelopeError as e:
            log.warning("malformed answer-stream data from %s: %s", self.authority, e)
            self._close_answer_stream()
            return
        for rejection in rejections:
            log.info("the server did not take our answer %s: %d %s", rejection.identity,
                     rejection.status, rejection.text)
            if rejection.status == 404:
                # Answers nothing of the server's: if it started an observation, the
                # server has forgotten it; stop it, as after a Reset.
                self._observation_lost(ids.token_of(rejection.identity))

    def _observation_lost(self, token: bytes) -> None:
        if self.on_observation_lost is not None:
            self.on_observation_lost(token)
        elif self._dispatcher is not None:
            self._dispatcher.observer_lost(self.address, token)

    def _stream_closed(self, conn: _Connection, stream_id: int, reason: str) -> None:
        if self._answer_stream == (conn, stream_id):
            self._answer_stream = None
            log.info("answer stream to %s ended: %s", self.authority, reason)
            return
        if self._downlink == (conn, stream_id):
            self._downlink = None
            log.info("downlink stream from %s ended: %s", self.authority, reason)

    def _serve(self, msg: Message, now: float) -> None:
        """Carry out a request once per identity; a repeat gets the first answer."""
        token = msg.token
        done = self._handled.get(token)
        if done is not MISSING:
            if isinstance(done, Message):
                self._queue_answer(done, streamed=True)
            return
        self._handled.add(token, None, now)
        if self.on_request is not None:
            self.on_request(msg)
        else:
            self.dispatcher.handle(msg, now)

    # -- answers (ServerTransport for the dispatcher) ---------------------------------------

    def send_response(self, request: Message, response: Message) -> None:
        now = self.loop.time()
        if not self._handled.replace(request.token, response, now, len(response.payload)):
            self._handled.add(request.token, response, now, len(response.payload))
        self._queue_answer(response, streamed=True)

    def acknowledge(self, request: Message) -> None:
        """Nothing to do: HTTP/2 has no empty acknowledgements."""

    def send_notification(self, observation: Observation | None, notification: Message
                          ) -> None:
        self._queue_answer(notification)

    def _queue_answer(self, msg: Message, *, streamed: bool = False) -> None:
        """``streamed``: an answer to a request of the server's, which may go on the answer
        stream (if it is lost, the server asks again); notifications never do."""
        (self._streamed if streamed else self._answers).append(msg)
        if not self._answers_scheduled:
            self._answers_scheduled = True
            self.loop.call_soon(self._flush_answers)

    def _flush_answers(self) -> None:
        self._answers_scheduled = False
        if self._streamed:
            streamed, self._streamed = self._streamed, []
            if not self._write_answers(streamed):
                self._answers[:0] = streamed
        answers, self._answers = self._answers, []
        location = self.location
        if not answers or location is None or self.closed:
            return
        path, headers, body = self._answers_request(location, answers)
        conn = self._conn
        if conn is not None and conn.usable:
            # The usual case, without a task: sent now, finished by a callback.
            try:
                waiter = conn.exchange("POST", path, headers, body)
            except h2.exceptions.ProtocolError:
                pass
            else:
                self._in_flight += 1
                waiter.add_done_callback(functools.partial(
                    self._answers_sent, answers, path, headers, body))
                return
        self._tasks.spawn(self._post_answers(answers, path, headers, body))

    def _write_answers(self, answers: list[Message]) -> bool:
        """On the answer stream, if it is open and accepted; False: not written."""
        stream = self._answer_stream
        if stream is None or not self._answer_stream_ready or self.closed:
            return False
        conn, sid = stream
        if not conn.usable:
            return False
        data = encode_answers([
            Answer(ids.identity_of(m.token), http_status(m.code), m.content_format,
                   m.observe, m.payload) for m in answers])
        if conn.core.unsent(sid) + len(data) > self.limits.max_envelope:
            return False  # the server does not read it: POSTs, which it may refuse (503)
        if not conn.core.write(sid, data):
            self._answer_stream = None
            return False
        conn.flush()
        return True

    def _answers_request(self, location: tuple[str, ...], answers: list[Message]
                         ) -> tuple[str, list[tuple[str, str]], bytes]:
        headers = self._auth([(ids.HEADER, ids.new_identity())])
        if len(answers) == 1:
            msg = answers[0]
            path = join_target((*location, "responses", ids.identity_of(msg.token)), [])
            headers += answer_headers(msg)
            return path, headers, msg.payload
        path = join_target((*location, "responses"), [])
        parts = [(ids.identity_of(m.token), int(answer_headers(m)[0][1]), m.observe)
                 for m in answers]
        headers += [("content-type", media_type(MULTIPART_CORE)),
                    (PARTS_HEADER, format_parts(parts))]
        body = encode_multipart([(m.content_format if m.payload else None,
                                  m.payload or None) for m in answers])
        return path, headers, body

    def _answers_sent(self, answers: list[Message], path: str,
                      headers: list[tuple[str, str]], body: bytes,
                      waiter: asyncio.Future[ResponseComplete]) -> None:
        self._in_flight -= 1
        if waiter.cancelled():
            return
        error = waiter.exception()
        if error is None:
            self._answers_delivered(answers, waiter.result())
        elif not self.closed:
            # The connection broke first: once more, same identity, on a new connection.
            self._tasks.spawn(self._post_answers(answers, path, headers, body, retry=True))

    async def _post_answers(self, answers: list[Message], path: str,
                            headers: list[tuple[str, str]], body: bytes, *,
                            retry: bool = False) -> None:
        try:
            done = await self._post("POST", path, headers, body, None, once=retry)
        except CoapError as e:
            log.info("answers to %s not delivered: %s", self.authority, e)
            return
        self._answers_delivered(answers, done)

    def _answers_delivered(self, answers: list[Message], done: ResponseComplete) -> None:
        if done.status != 404:
            return
        if len(answers) == 1:
            unknown = {ids.identity_of(answers[0].token)}
        else:
            unknown = {u.strip() for u in done.headers.get("lwm2m-unknown", "").split(",")}
        for msg in answers:
            if msg.observe is not None and ids.identity_of(msg.token) in unknown:
                # The server has forgotten this observation: stop it, as after a Reset.
                self._observation_lost(msg.token)

    # -- queue mode, lifecycle ------------------------------------------------------------

    @property
    def asleep(self) -> bool:
        return self._asleep

    @asleep.setter
    def asleep(self, value: bool) -> None:
        """Asleep, the downlink stream is closed (the server queues its requests); awake,
        it opens again after the next Update."""
        if value == self._asleep:
            return
        self._asleep = value
        if value:
            wanted = self._downlink_wanted
            self._close_downlink()
            self._downlink_wanted = wanted

    @property
    def pending(self) -> int:
        """Requests and answers not yet answered by the server."""
        return self._in_flight + len(self._answers) + len(self._streamed)

    @property
    def downlink_open(self) -> bool:
        return self._downlink is not None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._dispatcher is not None:
            self._dispatcher.close()
        self._tasks.cancel_all()
        if self._connecting is not None:
            self._connecting.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        for _ in range(3):
            await asyncio.sleep(0)
