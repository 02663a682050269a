"""The server's HTTP/2 connection core, driven in memory by h2's own client: requests
assembled within the limits, HTTP/1 refused in words, protocol abuse closing the
connection."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
from h2.errors import ErrorCodes

from aiolwm2m.http2.envelope import frame_item
from aiolwm2m.http2.h2_state import HTTP1_REFUSAL
from aiolwm2m.http2.limits import Http2Limits
from aiolwm2m.http2.messages import HttpReply
from aiolwm2m.http2.server_core import (
    ConnectionOver,
    RequestReady,
    ServerCore,
    StreamGone,
    UploadEnded,
    UploadItems,
    UploadTest,
)


class Pair:
    def __init__(self, limits: Http2Limits | None = None,
                 uploads: UploadTest | None = None) -> None:
        self.core = ServerCore(limits or Http2Limits(), 0.0, uploads)
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.client.initiate_connection()
        self.now = 0.0
        self.server_events: list[object] = []
        self.client_events: list[h2.events.Event] = []
        self.pending: dict[int, tuple[bytes, bool]] = {}
        self.pump()

    def pump(self) -> None:
        for _ in range(20):
            data = self.client.data_to_send()
            if data:
                self.server_events += self.core.receive(data, self.now)
            back = self.core.data_to_send()
            if back:
                self.client_events += self.client.receive_data(back)
            if not data and not back:
                return

    def request(self, method: str, path: str, body: bytes = b"",
                headers: list[tuple[str, str]] | None = None, end: bool = True) -> int:
        sid = self.client.get_next_available_stream_id()
        head = [(":method", method), (":scheme", "http"), (":authority", "x"),
                (":path", path), *(headers or [])]
        self.client.send_headers(sid, head, end_stream=not body and end)
        self.pump()
        if body:
            self.pending[sid] = (body, end)
            self.send_pending()
        return sid

    def send_pending(self) -> None:
        """Send what flow control allows of each body started; end streams done."""
        for sid, (body, end) in list(self.pending.items()):
            while body:
                room = min(self.client.local_flow_control_window(sid),
                           self.client.max_outbound_frame_size, len(body))
                if room <= 0:
                    break
                self.client.send_data(sid, body[:room], end_stream=end and room == len(body))
                body = body[room:]
                self.pump()
            if body:
                self.pending[sid] = (body, end)
            else:
                del self.pending[sid]

    def ready(self) -> list[RequestReady]:
        return [e for e in self.server_events if isinstance(e, RequestReady)]

    def responses(self) -> dict[int, dict[bytes, bytes]]:
        return {e.stream_id: dict(e.headers) for e in self.client_events
                if isinstance(e, h2.events.ResponseReceived)}


def test_request_with_body_is_assembled_and_answered() -> None:
    pair = Pair()
    sid = pair.request("POST", "/rd?ep=x", b"</3/0>",
                       [("content-type", "application/link-format"), ("x-a", "1"),
                        ("x-a", "2")])
    (ready,) = pair.ready()
    req = ready.request
    assert (req.method, req.path, req.body) == ("POST", "/rd?ep=x", b"</3/0>")
    assert req.headers["content-type"] == "application/link-format"
    assert req.headers["x-a"] == "1, 2"
    assert pair.core.held == 6
    assert pair.core.reply(sid, HttpReply(201, [("location", "/rd/abc")]))
    pair.pump()
    assert pair.responses()[sid][b":status"] == b"201"
    assert pair.core.held == 0
    assert not pair.core.reply(sid, HttpReply(200))  # answered once only


def test_body_over_the_limit_gets_413_declared_or_not() -> None:
    pair = Pair(Http2Limits(max_body=100, connection_body_budget=1000))
    streamed = pair.request("POST", "/dp", b"x" * 200)  # no content-length: counted
    assert pair.responses()[streamed][b":status"] == b"413"
    sid = pair.request("POST", "/dp", headers=[("content-length", "5000")], end=False)
    assert pair.responses()[sid][b":status"] == b"413"
    assert pair.ready() == [] and pair.core.held == 0
    # The connection still serves.
    ok = pair.request("GET", "/x")
    assert [r.request.stream_id for r in pair.ready()] == [ok]


def test_bodies_beyond_the_connection_budget_wait_for_credit() -> None:
    limits = Http2Limits(max_body=200000, connection_body_budget=200000)
    pair = Pair(limits)
    first = pair.request("POST", "/a", b"a" * 150000)
    assert [r.request.stream_id for r in pair.ready()] == [first]
    second = pair.request("POST", "/b", b"b" * 150000)
    # No more credit once the unanswered bodies pass the budget: the second waits, and
    # what the connection holds stays within the budget plus one flow-control window.
    assert second in pair.pending and len(pair.ready()) == 1
    assert 200000 < pair.core.held <= 200000 + 65535
    assert pair.core.reply(first, HttpReply(204))
    pair.pump()
    pair.send_pending()
    assert not pair.pending
    assert [r.request.stream_id for r in pair.ready()] == [first, second]
    assert pair.ready()[1].request.body == b"b" * 150000


def test_http1_request_gets_a_plain_505() -> None:
    core = ServerCore(Http2Limits(), 0.0)
    events = core.receive(b"GET /rd HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert isinstance(events[0], ConnectionOver) and events[0].refused == "http1"
    assert core.data_to_send() == HTTP1_REFUSAL
    assert core.closed


def test_garbage_closes_with_a_protocol_error() -> None:
    core = ServerCore(Http2Limits(), 0.0)
    events = core.receive(b"\x16\x03\x01\x00\x05hello", 0.0)
    assert isinstance(events[0], ConnectionOver)
    assert events[0].refused == "h2-protocol-error"


def test_rapid_resets_close_the_connection() -> None:
    pair = Pair(Http2Limits(resets_per_second=1.0, reset_burst=5))
    for _ in range(5):
        sid = pair.request("POST", "/dp", b"x", end=False)
        pair.client.reset_stream(sid, ErrorCodes.CANCEL)
        pair.pump()
    assert not pair.core.closed
    sid = pair.request("POST", "/dp", b"x", end=False)
    pair.client.reset_stream(sid, ErrorCodes.CANCEL)
    pair.pump()
    assert pair.core.closed
    over = [e for e in pair.server_events if isinstance(e, ConnectionOver)]
    assert over[0].refused == "h2-rapid-reset"
    assert any(isinstance(e, StreamGone) for e in pair.server_events)
    assert any(isinstance(e, h2.events.ConnectionTerminated)
               and e.error_code == ErrorCodes.ENHANCE_YOUR_CALM for e in pair.client_events)


def test_slow_bodies_get_408() -> None:
    pair = Pair(Http2Limits(request_timeout=5.0))
    sid = pair.request("POST", "/dp", b"part", end=False)
    assert pair.core.oldest_incomplete() == 0.0
    assert pair.core.expire_incomplete(4.0) == 0
    assert pair.core.expire_incomplete(5.0) == 1
    pair.pump()
    assert pair.responses()[sid][b":status"] == b"408"
    assert pair.core.held == 0 and pair.core.oldest_incomplete() is None


def test_downlink_stream_data_and_trailers() -> None:
    pair = Pair()
    sid = pair.request("GET", "/rd/x/requests")
    assert pair.core.open_stream(sid, [("content-type", "application/cbor-seq")])
    assert pair.core.write(sid, b"\x01" * 100000)  # beyond the 64 KiB window: waits
    pair.pump()
    got = sum(len(e.data) for e in pair.client_events if isinstance(e, h2.events.DataReceived))
    assert got == 65535 and pair.core.unsent(sid) == 100000 - 65535
    for e in pair.client_events:
        if isinstance(e, h2.events.DataReceived):
            pair.client.acknowledge_received_data(e.flow_controlled_length, sid)
    pair.client_events.clear()
    pair.pump()
    pair.core.finish(sid, [("lwm2m-closed", "replaced")])
    pair.pump()
    got = sum(len(e.data) for e in pair.client_events if isinstance(e, h2.events.DataReceived))
    assert got == 100000 - 65535
    trailers = [e for e in pair.client_events if isinstance(e, h2.events.TrailersReceived)]
    assert dict(trailers[0].headers)[b"lwm2m-closed"] == b"replaced"


def _is_sequence(method: str, path: str, headers: dict[str, str]) -> bool:
    return method == "POST" and headers.get("content-type") == "application/cbor-seq"


SEQ = [("content-type", "application/cbor-seq")]


def test_upload_items_are_handed_on_as_they_complete() -> None:
    pair = Pair(uploads=_is_sequence)
    sid = pair.request("POST", "/rd/r/responses", headers=SEQ, end=False)
    (ready,) = pair.ready()
    assert ready.request.streaming and ready.request.body == b""
    assert pair.core.open_stream(sid, SEQ)
    items = [frame_item(b"\xa0"), frame_item(b"\x41" + b"x"), frame_item(b"y" * 300)]
    data = b"".join(items)
    cut = len(items[0]) + len(items[1]) + 7
    pair.client.send_data(sid, data[:cut])
    pair.pump()
    got = [e for e in pair.server_events if isinstance(e, UploadItems)]
    assert [i for e in got for i in e.items] == [b"\xa0", b"\x41x"]
    assert pair.core.held == 7  # the incomplete third item, within the connection budget
    pair.client.send_data(sid, data[cut:], end_stream=True)
    pair.pump()
    got = [e for e in pair.server_events if isinstance(e, UploadItems)]
    assert got[-1].items == [b"y" * 300]
    assert pair.core.held == 0
    (ended,) = [e for e in pair.server_events if isinstance(e, UploadEnded)]
    assert (ended.stream_id, ended.error) == (sid, "")
    pair.core.finish(sid)
    pair.pump()
    assert any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid
               for e in pair.client_events)


def test_upload_item_over_max_body_ends_the_upload() -> None:
    pair = Pair(Http2Limits(max_body=100, connection_body_budget=1000), _is_sequence)
    sid = pair.request("POST", "/rd/r/responses", headers=SEQ, end=False)
    assert pair.core.open_stream(sid, SEQ)
    pair.client.send_data(sid, b"\xd8\x18\x59\x10\x00" + b"z" * 50)  # announces 4096
    pair.pump()
    (ended,) = [e for e in pair.server_events if isinstance(e, UploadEnded)]
    assert "over 100 bytes" in ended.error and pair.core.held == 0
    pair.core.stop_upload(sid, [("lwm2m-closed", ended.error)])
    pair.pump()
    trailers = [e for e in pair.client_events if isinstance(e, h2.events.TrailersReceived)]
    assert dict(trailers[0].headers)[b"lwm2m-closed"] == ended.error.encode()
    assert any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid
               and e.error_code == ErrorCodes.NO_ERROR for e in pair.client_events)


def test_refused_upload_is_answered_and_reset() -> None:
    pair = Pair(uploads=_is_sequence)
    sid = pair.request("POST", "/rd/r/responses", headers=SEQ, end=False)
    pair.client.send_data(sid, b"\xd8\x18\x59\x01\x00" + b"z" * 10)  # incomplete item
    pair.pump()
    assert pair.core.held == 15  # the incomplete item, its head included
    assert pair.core.reply(sid, HttpReply(404, [], b"no such registration"))
    pair.pump()
    assert pair.responses()[sid][b":status"] == b"404"
    assert pair.core.held == 0
    assert any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid
               for e in pair.client_events)


def test_upload_partial_items_share_the_connection_budget() -> None:
    limits = Http2Limits(max_body=150000, connection_body_budget=150000)
    pair = Pair(limits, _is_sequence)
    head = b"\xd8\x18\x5a" + (140000).to_bytes(4, "big")
    sids = [pair.request("POST", f"/rd/r{i}/responses", headers=SEQ, end=False)
            for i in range(3)]
    for sid in sids:
        pair.pending[sid] = (head + b"p" * 139000, False)
    pair.send_pending()
    # Partial items are held like bodies: past the budget no credit is given back, so
    # the connection holds at most the budget plus the peer's one connection window.
    assert 150000 < pair.core.held <= 150000 + 65535
    assert pair.pending
    held = pair.core.held
    pair.client.reset_stream(sids[0])
    pair.pump()
    assert pair.core.held < held  # a reset upload's partial item is freed
