"""One accepted HTTP/2 connection, without I/O: bytes in, complete requests out; answers and
downlink data in, bytes out.

On top of ``h2``'s state machine (:mod:`.h2_state`) it assembles request bodies within
:class:`~.limits.Http2Limits` (413 beyond ``max_body``; a connection's unanswered bodies
within ``connection_body_budget``, by holding back flow-control credit), sends bodies as
flow control allows, answers an HTTP/1.x request line with a plain 505 and closes, and closes
connections that break the protocol or reset streams faster than ``resets_per_second``.
The caller (:mod:`.server_connection`) moves the bytes and hands requests on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import h2.events as ev
import h2.exceptions
from h2.errors import ErrorCodes

from .envelope import EnvelopeError, SequenceSplitter
from .h2_state import HTTP1_REFUSAL, PREFACE, looks_like_http1, server_connection
from .limits import Http2Limits
from .messages import HttpReply, HttpRequest

_CONTENT_LENGTH: Final = b"content-length"


class RequestReady:
    __slots__ = ("request",)

    def __init__(self, request: HttpRequest) -> None:
        self.request = request


class StreamGone:
    """The peer reset a stream (or it closed before we were done with it)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class ConnectionOver:
    """The connection is finished: ``refused`` is a refusal token when the peer broke a
    rule (``http1``, ``h2-protocol-error``, ``h2-rapid-reset``), None for a GOAWAY."""

    __slots__ = ("reason", "refused")

    def __init__(self, reason: str, refused: str | None = None) -> None:
        self.reason = reason
        self.refused = refused


class UploadItems:
    """Items of an upload's sequence (tag-24 byte strings, not decoded), as they complete."""

    __slots__ = ("items", "stream_id")

    def __init__(self, stream_id: int, items: list[bytes]) -> None:
        self.stream_id = stream_id
        self.items = items


class UploadEnded:
    """The peer ended an upload (``error`` empty), or it broke the framing (``error`` says
    how: the stream is of no more use, the caller ends it with
    :meth:`ServerCore.stop_upload`)."""

    __slots__ = ("error", "stream_id")

    def __init__(self, stream_id: int, error: str) -> None:
        self.stream_id = stream_id
        self.error = error


CoreEvent = RequestReady | StreamGone | ConnectionOver | UploadItems | UploadEnded
#: Whether a request (method, path, headers) is an upload: its body is a sequence of
#: tag-24 items handed on as they complete, not collected whole.
UploadTest = Callable[[str, str, dict[str, str]], bool]


class _Incoming:
    __slots__ = ("chunks", "headers", "method", "path", "size", "started")

    def __init__(self, method: str, path: str, headers: dict[str, str], started: float
                 ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.started = started


class _Outgoing:
    __slots__ = ("buffer", "ending", "trailers")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.ending = False
        self.trailers: list[tuple[str, str]] | None = None


class ServerCore:
    """See the module docstring. ``held`` is the body bytes of requests received and not
    yet answered; ``refused_streams`` counts streams closed by a limit."""

    def __init__(self, limits: Http2Limits, now: float, uploads: UploadTest | None = None
                 ) -> None:
        self.limits = limits
        self._is_upload = uploads
        # Uploads being received: their incomplete item (counted in ``held``).
        self._uploads: dict[int, SequenceSplitter] = {}
        self.h2 = server_connection(limits)
        self.closed = False
        self.close_reason = ""
        self.held = 0
        self._sniffing = True
        self._incoming: dict[int, _Incoming] = {}
        # Body bytes of each stream not yet answered (complete or not).
        self._body_of: dict[int, int] = {}
        self._out: dict[int, _Outgoing] = {}
        self._deferred: list[tuple[int, int]] = []
        self._raw_out = bytearray()
        self._reset_tokens = float(limits.reset_burst)
        self._reset_clock = now

    # -- input ----------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[CoreEvent]:
        if self.closed:
            return []
        if self._sniffing:
            if looks_like_http1(data):
                self.h2.data_to_send()  # our SETTINGS would only confuse an HTTP/1 client
                self._raw_out += HTTP1_REFUSAL
                self.closed = True
                self.close_reason = "HTTP/1.x request refused"
                return [ConnectionOver(self.close_reason, "http1")]
            if len(data) >= len(PREFACE) or not PREFACE.startswith(data):
                self._sniffing = False
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            return [self._fail(e)]
        out: list[CoreEvent] = []
        for event in events:
            kind = type(event)
            if kind is ev.DataReceived:
                assert isinstance(event, ev.DataReceived)
                self._data(event, out)
            elif kind is ev.RequestReceived:
                assert isinstance(event, ev.RequestReceived)
                self._headers(event, now, out)
            elif kind is ev.StreamEnded:
                assert isinstance(event, ev.StreamEnded)
                self._ended(event.stream_id, out)
            elif kind is ev.StreamReset:
                assert isinstance(event, ev.StreamReset)
                self._forget(event.stream_id)
                out.append(StreamGone(event.stream_id))
                if self._rapid_reset(now):
                    out.append(self._calm())
                    break
            elif kind is ev.WindowUpdated or kind is ev.RemoteSettingsChanged:
                sid = getattr(event, "stream_id", 0) or 0
                self._pump_all() if sid == 0 else self._pump(sid)
            elif kind is ev.ConnectionTerminated:
                self.closed = True
                self.close_reason = "the peer closed the connection (GOAWAY)"
                out.append(ConnectionOver(self.close_reason))
                break
        return out

    def _headers(self, event: ev.RequestReceived, now: float, out: list[CoreEvent]) -> None:
        sid = event.stream_id
        method = path = ""
        headers: dict[str, str] = {}
        declared = -1
        for name, value in event.headers:
            n = bytes(name)
            v = bytes(value).decode("latin-1")
            if n == b":method":
                method = v
            elif n == b":path":
                path = v
            elif n[:1] != b":":
                key = n.decode("latin-1")
                # Repeated headers (other than cookies, which LwM2M has none of) join with
                # a comma, as RFC 9110 5.3 allows.
                headers[key] = headers[key] + ", " + v if key in headers else v
                if n == _CONTENT_LENGTH:
                    declared = int(v) if v.isdigit() and len(v) < 16 else -1
        limit = self.limits.max_body
        if declared > limit:
            self._refuse_body(sid, limit)
            return
        if (not event.stream_ended and self._is_upload is not None
                and self._is_upload(method, path, headers)):
            self._uploads[sid] = SequenceSplitter(limit)
            self._body_of[sid] = 0
            out.append(RequestReady(HttpRequest(sid, method, path, headers, streaming=True)))
            return
        incoming = _Incoming(method, path, headers, now)
        if event.stream_ended:
            out.append(RequestReady(HttpRequest(sid, method, path, headers)))
            self._body_of[sid] = 0
            return
        self._incoming[sid] = incoming
        self._body_of[sid] = 0

    def _data(self, event: ev.DataReceived, out: list[CoreEvent]) -> None:
        sid = event.stream_id
        flow = event.flow_controlled_length or 0
        incoming = self._incoming.get(sid)
        if incoming is None:
            splitter = self._uploads.get(sid)
            if splitter is not None:
                self._upload_data(sid, splitter, event.data or b"", flow, out)
                return
            # A body after we answered (413) or forgot the stream: credit back at once.
            if flow:
                self.h2.acknowledge_received_data(flow, sid)
            return
        data = event.data or b""
        incoming.size += len(data)
        if incoming.size > self.limits.max_body:
            self._incoming.pop(sid, None)
            self.held -= self._body_of.pop(sid, 0)
            if flow:
                self.h2.acknowledge_received_data(flow, sid)
            self._refuse_body(sid, self.limits.max_body)
            self._release_deferred()
            return
        if data:
            incoming.chunks.append(data)
            self.held += len(data)
            self._body_of[sid] = self._body_of.get(sid, 0) + len(data)
        if flow:
            if self.held <= self.limits.connection_body_budget:
                self.h2.acknowledge_received_data(flow, sid)
            else:
                self._deferred.append((sid, flow))

    def _upload_data(self, sid: int, splitter: SequenceSplitter, data: bytes, flow: int,
                     out: list[CoreEvent]) -> None:
        before = splitter.pending
        try:
            items = splitter.feed(data) if data else []
        except EnvelopeError as e:
            self.held -= before
            del self._uploads[sid]
            if flow:
                self.h2.acknowledge_received_data(flow, sid)
            self._release_deferred()
            out.append(UploadEnded(sid, str(e)))
            return
        self.held += splitter.pending - before
        if items:
            out.append(UploadItems(sid, items))
        if flow:
            if self.held <= self.limits.connection_body_budget:
                self.h2.acknowledge_received_data(flow, sid)
            else:
                self._deferred.append((sid, flow))

    def _drop_upload(self, sid: int) -> SequenceSplitter | None:
        splitter = self._uploads.pop(sid, None)
        if splitter is not None and splitter.pending:
            self.held -= splitter.pending
            self._release_deferred()
        return splitter

    def stop_upload(self, stream_id: int, trailers: list[tuple[str, str]]) -> None:
        """End an upload from our side: the response (opened with :meth:`open_stream`)
        ends with ``trailers`` and the peer is told to stop sending (RFC 9113 8.1)."""
        self._drop_upload(stream_id)
        self._body_of.pop(stream_id, None)
        self.finish(stream_id, trailers)
        self._reset_stream(stream_id, ErrorCodes.NO_ERROR)

    def _ended(self, sid: int, out: list[CoreEvent]) -> None:
        incoming = self._incoming.pop(sid, None)
        if incoming is None:
            splitter = self._drop_upload(sid)
            if splitter is not None:
                out.append(UploadEnded(sid, "" if not splitter.pending
                                       else "the stream ended inside an item"))
            return
        chunks = incoming.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        out.append(RequestReady(HttpRequest(sid, incoming.method, incoming.path,
                                            incoming.headers, body)))

    def _refuse_body(self, sid: int, limit: int) -> None:
        text = f"request body larger than {limit} bytes\n".encode()
        self._send_reply(sid, HttpReply(413, [("content-type", "text/plain;charset=utf-8")],
                                        text))
        # The answer is complete; tell the peer to stop sending the rest (RFC 9113 8.1).
        self._reset_stream(sid, ErrorCodes.NO_ERROR)
        self._body_of.pop(sid, None)

    def _forget(self, sid: int) -> None:
        self._drop_upload(sid)
        self._incoming.pop(sid, None)
        self._out.pop(sid, None)
        held = self._body_of.pop(sid, 0)
        if held:
            self.held -= held
            self._release_deferred()

    def _rapid_reset(self, now: float) -> bool:
        limits = self.limits
        tokens = self._reset_tokens + (now - self._reset_clock) * limits.resets_per_second
        self._reset_clock = now
        self._reset_tokens = min(float(limits.reset_burst), tokens) - 1.0
        return self._reset_tokens < 0

    def _calm(self) -> ConnectionOver:
        self.goaway(ErrorCodes.ENHANCE_YOUR_CALM, "too many streams reset")
        return ConnectionOver(self.close_reason, "h2-rapid-reset")

    def _fail(self, error: Exception) -> ConnectionOver:
        code = getattr(error, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
        reason = f"HTTP/2 protocol error: {str(error)[:120]}"
        self.goaway(code, reason)
        return ConnectionOver(reason, "h2-protocol-error")

    def _release_deferred(self) -> None:
        budget = self.limits.connection_body_budget
        while self._deferred and self.held <= budget:
            sid, flow = self._deferred.pop(0)
            self.h2.acknowledge_received_data(flow, sid)

    # -- output ---------------------------------------------------------------------------

    def reply(self, stream_id: int, reply: HttpReply) -> bool:
        """Answer a request; False when its stream is gone (the peer reset it)."""
        held = self._body_of.pop(stream_id, None)
        if held is None:
            return False
        if held:
            self.held -= held
            self._release_deferred()
        self._incoming.pop(stream_id, None)
        sent = self._send_reply(stream_id, reply)
        if self._drop_upload(stream_id) is not None:
            # A refused upload: the answer is complete, the rest of its body unwanted.
            self._reset_stream(stream_id, ErrorCodes.NO_ERROR)
        return sent

    def _send_reply(self, sid: int, reply: HttpReply) -> bool:
        headers = [(":status", str(reply.status)), *reply.headers]
        body = reply.body
        if body:
            headers.append(("content-length", str(len(body))))
        try:
            self.h2.send_headers(sid, headers, end_stream=not body)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        if body:
            out = self._out[sid] = _Outgoing()
            out.buffer += body
            out.ending = True
            self._pump(sid)
        return True

    def open_stream(self, stream_id: int, headers: list[tuple[str, str]]) -> bool:
        """Answer a request with a body that follows over time (a downlink stream)."""
        held = self._body_of.pop(stream_id, None)
        if held is None:
            return False
        if held:
            self.held -= held
            self._release_deferred()
        try:
            self.h2.send_headers(stream_id, [(":status", "200"), *headers])
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        self._out[stream_id] = _Outgoing()
        return True

    def write(self, stream_id: int, data: bytes) -> bool:
        out = self._out.get(stream_id)
        if out is None or out.ending:
            return False
        out.buffer += data
        self._pump(stream_id)
        return True

    def finish(self, stream_id: int, trailers: list[tuple[str, str]] | None = None) -> None:
        """End a stream opened with :meth:`open_stream` once its data is out."""
        out = self._out.get(stream_id)
        if out is None:
            return
        out.ending = True
        out.trailers = trailers
        self._pump(stream_id)

    def unsent(self, stream_id: int) -> int:
        """Bytes of a stream waiting for flow-control credit."""
        out = self._out.get(stream_id)
        return len(out.buffer) if out is not None else 0

    def reset(self, stream_id: int, code: int = ErrorCodes.CANCEL) -> None:
        self._forget(stream_id)
        self._reset_stream(stream_id, code)

    def _reset_stream(self, sid: int, code: int) -> None:
        try:
            self.h2.reset_stream(sid, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def goaway(self, code: int = ErrorCodes.NO_ERROR, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason or "closed"
        try:
            self.h2.close_connection(code, reason.encode()[:64] or None)
        except h2.exceptions.ProtocolError:
            pass

    def _pump_all(self) -> None:
        for sid in list(self._out):
            self._pump(sid)

    def _pump(self, sid: int) -> None:
        out = self._out.get(sid)
        if out is None:
            return
        conn = self.h2
        try:
            buffer = out.buffer
            while buffer:
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    return
                chunk = bytes(buffer[:room])
                del buffer[:room]
                conn.send_data(sid, chunk)
            if out.ending:
                del self._out[sid]
                if out.trailers:
                    conn.send_headers(sid, out.trailers, end_stream=True)
                else:
                    conn.end_stream(sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._out.pop(sid, None)

    def data_to_send(self) -> bytes:
        if self._raw_out:
            data = bytes(self._raw_out)
            self._raw_out.clear()
            return data
        return self.h2.data_to_send()

    # -- timers ---------------------------------------------------------------------------

    def oldest_incomplete(self) -> float | None:
        """When the oldest request still receiving its body started."""
        if not self._incoming:
            return None
        return min(i.started for i in self._incoming.values())

    def expire_incomplete(self, now: float) -> int:
        """Answer 408 and reset every request whose body is overdue; how many."""
        limit = self.limits.request_timeout
        late = [sid for sid, i in self._incoming.items() if now - i.started >= limit]
        for sid in late:
            self._incoming.pop(sid, None)
            self.held -= self._body_of.pop(sid, 0)
            self._send_reply(sid, HttpReply(408, [("content-type", "text/plain;charset=utf-8")],
                                            b"request body not complete in time\n"))
            self._reset_stream(sid, ErrorCodes.NO_ERROR)
        if late:
            self._release_deferred()
        return len(late)
