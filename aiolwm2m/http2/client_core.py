"""The device's HTTP/2 connection, without I/O: requests in, bytes out; bytes in, answers
and downlink data out.

Ordinary requests (Register, answers...) get their response body collected whole, within
``max_body``; a *streaming* request (the downlink ``GET``) hands on its data as it arrives,
and ends with its trailers (the server's ``lwm2m-closed`` reason).
"""

from __future__ import annotations

import h2.events as ev
import h2.exceptions
from h2.errors import ErrorCodes

from .h2_state import client_connection
from .limits import Http2Limits


class ResponseHead:
    """The status and headers of a streaming request's response."""

    __slots__ = ("headers", "status", "stream_id")

    def __init__(self, stream_id: int, status: int, headers: dict[str, str]) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers


class ResponseComplete:
    __slots__ = ("body", "headers", "status", "stream_id")

    def __init__(self, stream_id: int, status: int, headers: dict[str, str], body: bytes
                 ) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers
        self.body = body


class StreamData:
    __slots__ = ("data", "stream_id")

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data


class StreamClosed:
    """A stream ended without a (complete) response, or a streaming one ended: ``reason``
    says why (a reset, the trailers' ``lwm2m-closed``, the body limit)."""

    __slots__ = ("reason", "stream_id")

    def __init__(self, stream_id: int, reason: str) -> None:
        self.stream_id = stream_id
        self.reason = reason


class ConnectionOver:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


ClientEvent = ResponseHead | ResponseComplete | StreamData | StreamClosed | ConnectionOver


class _Stream:
    __slots__ = ("body", "headers", "status", "streaming")

    def __init__(self, streaming: bool) -> None:
        self.streaming = streaming
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()


class ClientCore:
    def __init__(self, limits: Http2Limits, authority: str, scheme: str) -> None:
        self.limits = limits
        self.authority = authority
        self.scheme = scheme
        self.h2 = client_connection(limits)
        self.closed = False
        self.close_reason = ""
        self._streams: dict[int, _Stream] = {}
        self._out: dict[int, bytearray] = {}
        # Requests whose body stays open for :meth:`write` (the answer stream).
        self._uploads: set[int] = set()

    def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                *, streaming: bool = False, upload: bool = False) -> int:
        """Start a request; its body goes out as flow control allows (``upload``: and
        stays open for :meth:`write` until :meth:`end_upload`). Raises
        ``h2.exceptions.ProtocolError`` (e.g. too many streams) when it cannot."""
        sid = self.h2.get_next_available_stream_id()
        head = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                (":path", path), *headers]
        if body:
            head.append(("content-length", str(len(body))))
        self.h2.send_headers(sid, head, end_stream=not body and not upload)
        self._streams[sid] = _Stream(streaming)
        if upload:
            self._uploads.add(sid)
        if body:
            self._out[sid] = bytearray(body)
            self._pump(sid)
        return sid

    def write(self, stream_id: int, data: bytes) -> bool:
        """More body for an upload; False when it is over (ended, reset)."""
        if stream_id not in self._uploads:
            return False
        buffer = self._out.get(stream_id)
        if buffer is None:
            self._out[stream_id] = bytearray(data)
        else:
            buffer += data
        self._pump(stream_id)
        return True

    def unsent(self, stream_id: int) -> int:
        buffer = self._out.get(stream_id)
        return len(buffer) if buffer is not None else 0

    def end_upload(self, stream_id: int) -> None:
        """End an upload's body once what was written is out."""
        if stream_id not in self._uploads:
            return
        self._uploads.discard(stream_id)
        if stream_id in self._out:
            self._pump(stream_id)
            return
        try:
            self.h2.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def cancel(self, stream_id: int) -> None:
        self._uploads.discard(stream_id)
        self._streams.pop(stream_id, None)
        self._out.pop(stream_id, None)
        try:
            self.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def ping(self) -> None:
        try:
            self.h2.ping(b"lwm2m-h2")
        except h2.exceptions.ProtocolError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = "closed by us"
            try:
                self.h2.close_connection()
            except h2.exceptions.ProtocolError:
                pass

    def data_to_send(self) -> bytes:
        return self.h2.data_to_send()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def receive(self, data: bytes) -> list[ClientEvent]:
        if self.closed:
            return []
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.closed = True
            self.close_reason = f"HTTP/2 protocol error: {str(e)[:120]}"
            try:
                self.h2.close_connection(ErrorCodes.PROTOCOL_ERROR)
            except h2.exceptions.ProtocolError:
                pass
            return [ConnectionOver(self.close_reason)]
        out: list[ClientEvent] = []
        for event in events:
            if isinstance(event, ev.ResponseReceived):
                self._head(event, out)
            elif isinstance(event, ev.DataReceived):
                self._data(event, out)
            elif isinstance(event, ev.TrailersReceived):
                self._trailers(event, out)
            elif isinstance(event, ev.StreamEnded):
                self._ended(event.stream_id, "", out)
            elif isinstance(event, ev.StreamReset):
                self._out.pop(event.stream_id, None)
                self._uploads.discard(event.stream_id)
                if self._streams.pop(event.stream_id, None) is not None:
                    out.append(StreamClosed(event.stream_id,
                                            f"reset by the server ({event.error_code})"))
            elif isinstance(event, ev.WindowUpdated | ev.RemoteSettingsChanged):
                for sid in list(self._out):
                    self._pump(sid)
            elif isinstance(event, ev.ConnectionTerminated):
                self.closed = True
                self.close_reason = "the server closed the connection (GOAWAY)"
                out.append(ConnectionOver(self.close_reason))
                break
        return out

    def _head(self, event: ev.ResponseReceived, out: list[ClientEvent]) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        for name, value in event.headers:
            n = bytes(name).decode("latin-1")
            v = bytes(value).decode("latin-1")
            if n == ":status":
                stream.status = int(v) if v.isdigit() else 0
            elif not n.startswith(":"):
                stream.headers[n] = v
        if stream.streaming:
            out.append(ResponseHead(event.stream_id, stream.status, stream.headers))
        if event.stream_ended:
            self._ended(event.stream_id, "", out)

    def _data(self, event: ev.DataReceived, out: list[ClientEvent]) -> None:
        sid = event.stream_id
        flow = event.flow_controlled_length or 0
        if flow:
            self.h2.acknowledge_received_data(flow, sid)
        stream = self._streams.get(sid)
        data = event.data or b""
        if stream is None or not data:
            return
        if stream.streaming:
            out.append(StreamData(sid, data))
            return
        stream.body += data
        if len(stream.body) > self.limits.max_body:
            self.cancel(sid)
            out.append(StreamClosed(sid, f"response body over {self.limits.max_body} bytes"))

    def _trailers(self, event: ev.TrailersReceived, out: list[ClientEvent]) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        reason = ""
        for name, value in event.headers:
            if bytes(name) == b"lwm2m-closed":
                reason = bytes(value).decode("utf-8", "replace")[:200]
        self._ended(event.stream_id, reason, out)

    def _ended(self, sid: int, reason: str, out: list[ClientEvent]) -> None:
        stream = self._streams.pop(sid, None)
        self._out.pop(sid, None)
        if sid in self._uploads:
            # The server answered the whole upload: it wants no more of it.
            self.cancel(sid)
        if stream is None:
            return
        if stream.streaming:
            out.append(StreamClosed(sid, reason or "the server ended the stream"))
        else:
            out.append(ResponseComplete(sid, stream.status, stream.headers,
                                        bytes(stream.body)))

    def _pump(self, sid: int) -> None:
        buffer = self._out.get(sid)
        if buffer is None:
            return
        conn = self.h2
        try:
            while buffer:
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    return
                if len(buffer) <= room:
                    chunk = bytes(buffer)
                    buffer.clear()
                else:
                    chunk = bytes(buffer[:room])
                    del buffer[:room]
                conn.send_data(sid, chunk, end_stream=not buffer and sid not in self._uploads)
            del self._out[sid]
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._out.pop(sid, None)
