"""The sans-IO CoAP-over-TCP connection: two of them wired back to back, time as a number."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import RequestTimeout
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange, ExchangeFailed, ResponseReceived
from aiolwm2m.coap.signals import Capabilities, build_csm
from aiolwm2m.coap.tcp_connection import (
    AbortReceived,
    AbortSent,
    ConnectionLost,
    ConnectionState,
    CsmReceived,
    Event,
    MessageTooLarge,
    ReleaseReceived,
    TcpConnection,
    TcpParameters,
)
from aiolwm2m.coap.tcp_framing import decode_tcp, encode_tcp


class Pair:
    """A client and a server connection; ``pump`` carries bytes until both are quiet."""

    def __init__(self, client: TcpParameters | None = None,
                 server: TcpParameters | None = None) -> None:
        self.now = 0.0
        self.client = TcpConnection(("server", 5683), self.now, client or TcpParameters())
        self.server = TcpConnection(("client", 40000), self.now, server or TcpParameters())
        self.requests: dict[str, list[Message]] = {"client": [], "server": []}
        self.events: dict[str, list[Event]] = {"client": [], "server": []}

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for name, src, dst, other in (("server", self.client, self.server, "client"),
                                          ("client", self.server, self.client, "server")):
                if src.outbox:
                    data = b"".join(src.outbox)
                    src.outbox.clear()
                    self.requests[name] += dst.receive_data(data, self.now)
                    moved = True
                del other
        for name, conn in (("client", self.client), ("server", self.server)):
            self.events[name] += conn.events
            conn.events = []

    def frames(self, conn: TcpConnection) -> list[Message]:
        data = b"".join(conn.outbox)
        conn.outbox.clear()
        out = []
        while data:
            n = _frame_length(data)
            out.append(decode_tcp(data[:n]))
            data = data[n:]
        return out


def _frame_length(data: bytes) -> int:
    nib, tkl = data[0] >> 4, data[0] & 15
    hl = 1 if nib < 13 else {13: 2, 14: 3, 15: 5}[nib]
    body = nib if nib < 13 else int.from_bytes(data[1:hl], "big") + {13: 13, 14: 269,
                                                                       15: 65805}[nib]
    return hl + 1 + tkl + body


def responses(events: list[Event]) -> list[tuple[Exchange, Message]]:
    return [(e.exchange, e.response) for e in events if isinstance(e, ResponseReceived)]


def test_both_send_csm_first_without_waiting() -> None:
    p = Pair(client=TcpParameters(max_message_size=4096), server=TcpParameters(block_wise=False))
    # Before anything was exchanged, each side's first frame is its CSM.
    assert decode_tcp(p.client.outbox[0]).code == Code.CSM
    # The client may send a request right away, before the server's CSM arrived.
    ex = p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    assert len(p.client.outbox) == 2
    p.pump()
    assert p.client.remote == Capabilities(65536, False)
    assert p.server.remote == Capabilities(4096, True)
    assert not p.client.bert and not p.server.bert
    assert [type(e) for e in p.events["server"]] == [CsmReceived]
    [req] = p.requests["server"]
    assert req.token == ex.token and req.remote == ("client", 40000)
    p.server.respond(req, req.response(Code.CONTENT, b"A"), p.now)
    p.pump()
    [(got_ex, resp)] = responses(p.events["client"])
    assert got_ex is ex and resp.payload == b"A" and resp.token == ex.token


def test_token_only_matching_out_of_order() -> None:
    p = Pair()
    p.pump()
    exs = [p.client.send_request(Message.request(Code.GET, f"/{i}"), p.now) for i in range(3)]
    p.pump()
    reqs = p.requests["server"]
    for req in reversed(reqs):
        p.server.respond(req, req.response(Code.CONTENT, req.uri_path[0].encode()), p.now)
    p.pump()
    got = {ex.request.uri_path[0]: resp.payload.decode()
           for ex, resp in responses(p.events["client"])}
    assert got == {"0": "0", "1": "1", "2": "2"}
    assert p.client.pending_exchanges == 0 and exs[0].done


def test_unknown_token_and_bad_critical_request_option() -> None:
    p = Pair()
    p.pump()
    p.server.send_notification(Message(0, Code.CONTENT, token=b"nobody"), p.now)
    p.pump()
    assert p.client.unmatched == 1 and p.client.state is ConnectionState.OPEN
    req = Message.request(Code.GET, "/x")
    req.options.append((9, b"?"))  # unknown critical option
    p.client.send_request(req, p.now)
    p.pump()
    assert p.requests["server"] == []
    [(_, resp)] = responses(p.events["client"])
    assert resp.code == Code.BAD_OPTION and b"9" in resp.payload


def test_observe_notifications_are_plain_responses() -> None:
    p = Pair()
    p.pump()
    ex = p.client.send_request(Message.request(Code.GET, "/obs", observe=0), p.now)
    p.pump()
    [req] = p.requests["server"]
    for seq in (5, 3, 9):  # no reordering check over TCP: every one is delivered
        note = req.response(Code.CONTENT, str(seq).encode())
        note.observe = seq
        p.server.send_notification(note, p.now)
    p.pump()
    assert [r.payload for _, r in responses(p.events["client"])] == [b"5", b"3", b"9"]
    assert p.client.pending_exchanges == 1
    # An error ends it.
    p.server.send_notification(req.response(Code.NOT_FOUND), p.now)
    p.pump()
    assert p.client.pending_exchanges == 0 and ex.done


def test_ping_pong_with_custody() -> None:
    p = Pair()
    p.pump()
    ex = p.client.send_ping(p.now, custody=True)
    p.pump()
    [(got, pong)] = responses(p.events["client"])
    assert got is ex and pong.code == Code.PONG and pong.token == ex.token
    assert pong.get_option(2) == b""  # custody: nothing was pending
    # With a request still unanswered, the Pong carries no Custody.
    p.client.send_request(Message.request(Code.GET, "/slow"), p.now)
    p.client.send_ping(p.now, custody=True)
    p.pump()
    pong2 = responses(p.events["client"])[-1][1]
    assert pong2.code == Code.PONG and pong2.get_option(2) is None


def test_tokenless_pong_answers_the_oldest_ping() -> None:
    p = Pair()
    p.pump()
    ex = p.client.send_ping(p.now)
    p.pump()  # our server answers properly; now fake a libcoap-style Pong
    p.events["client"].clear()
    ex2 = p.client.send_ping(p.now)
    p.client.outbox.clear()
    p.client.receive_data(encode_tcp(Message(0, Code.PONG)), p.now)
    assert ex.done and ex2.done
    assert next(e for e in p.client.events if isinstance(e, ResponseReceived)).exchange is ex2


def test_release_lets_in_flight_exchanges_finish() -> None:
    p = Pair()
    p.pump()
    ex = p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    p.pump()
    p.server.release(p.now, "moving", alternative_address="other:5683", hold_off=30)
    p.pump()
    rel = [e for e in p.events["client"] if isinstance(e, ReleaseReceived)]
    assert rel[0].release.alternative_addresses == ("other:5683",)
    assert rel[0].release.hold_off == 30
    assert p.client.state is ConnectionState.RELEASING
    with pytest.raises(ConnectionLost):
        p.client.send_request(Message.request(Code.GET, "/b"), p.now)
    # The server still answers what it had received; then both sides are done.
    [req] = p.requests["server"]
    p.server.respond(req, req.response(Code.CONTENT), p.now)
    p.pump()
    assert ex.done and responses(p.events["client"])[0][0] is ex
    assert p.client.closed and p.server.closed


def test_release_timeout_fails_what_is_left() -> None:
    p = Pair(client=TcpParameters(release_timeout=2.0))
    p.pump()
    ex = p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    p.server.release(p.now)
    p.pump()
    p.now = 2.5
    p.client.handle_timers(p.now)
    assert p.client.closed and ex.done
    [fail] = [e for e in p.client.events if isinstance(e, ExchangeFailed)]
    assert isinstance(fail.error, ConnectionLost)


@pytest.mark.parametrize("data, diagnostic", [
    (b"\x09\xe1", "reserved token length"),
    (b"\xf0\x7f\xff\xff\xff", "Max-Message-Size"),
    (encode_tcp(Message.request(Code.GET, "/x")), "first message must be a CSM"),
    (encode_tcp(Message(0, Code.CSM, options=[(3, b"")])), "unknown critical option 3"),
    (encode_tcp(Message(0, Code.CSM, options=[(2, b"\x00" * 5)])), "invalid length"),
    (encode_tcp(build_csm(Capabilities())) + b"\x00\x30", "reserved code 1.16"),
    (encode_tcp(build_csm(Capabilities())) + encode_tcp(
        Message(0, Code.PING, options=[(1, b"")])), "unknown critical option 1"),
])
def test_protocol_errors_abort_with_a_diagnostic(data: bytes, diagnostic: str) -> None:
    conn = TcpConnection(("peer", 1), 0.0)
    conn.outbox.clear()
    assert conn.receive_data(data, 0.0) == []
    assert conn.closed and diagnostic in conn.close_reason
    [abort] = [f for f in (decode_tcp(b) for b in conn.outbox)]
    assert abort.code == Code.ABORT and diagnostic in abort.payload.decode()
    [sent] = [e for e in conn.events if isinstance(e, AbortSent)]
    assert diagnostic in sent.abort.diagnostic
    if "critical option 3" in diagnostic:
        assert abort.get_option(2) == b"\x03" and sent.abort.bad_csm_option == 3
    # Nothing is processed after an abort.
    assert conn.receive_data(encode_tcp(Message.request(Code.GET, "/y")), 1.0) == []


def test_elective_unknowns_and_empty_messages_are_ignored() -> None:
    conn = TcpConnection(("peer", 1), 0.0)
    data = (encode_tcp(Message(0, Code.CSM, options=[(4, b""), (100, b"x")]))
            + b"\x00\x00"  # Empty message
            + encode_tcp(Message(0, Code.PING, token=b"p", options=[(8, b"")]))
            + encode_tcp(Message(0, 0xE9)))  # unassigned signal code 7.09
    assert conn.receive_data(data, 0.0) == []
    assert conn.state is ConnectionState.OPEN and conn.remote.block_wise


def test_abort_from_the_peer_fails_pending_exchanges() -> None:
    p = Pair()
    p.pump()
    ex = p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    p.server.abort("going away")
    p.pump()
    assert p.client.closed and ex.done
    kinds = [type(e) for e in p.events["client"]]
    assert AbortReceived in kinds and ExchangeFailed in kinds


def test_request_larger_than_the_peer_accepts() -> None:
    p = Pair(server=TcpParameters(max_message_size=200))
    p.pump()
    with pytest.raises(MessageTooLarge):
        p.client.send_request(Message.request(Code.PUT, "/a", payload=b"x" * 300), p.now)
    # Before the peer's CSM, the base value of 1152 applies.
    fresh = TcpConnection(("x", 1), 0.0)
    with pytest.raises(MessageTooLarge):
        fresh.send_request(Message.request(Code.PUT, "/a", payload=b"x" * 1200), 0.0)


def test_oversized_response_is_replaced_by_an_error() -> None:
    p = Pair(client=TcpParameters(max_message_size=200))
    p.pump()
    p.client.send_request(Message.request(Code.GET, "/big"), p.now)
    p.pump()
    [req] = p.requests["server"]
    p.server.respond(req, req.response(Code.CONTENT, b"x" * 500), p.now)
    p.pump()
    [(_, resp)] = responses(p.events["client"])
    assert resp.code == Code.INTERNAL_SERVER_ERROR and b"Max-Message-Size" in resp.payload


def test_timers_request_timeout_and_missing_csm() -> None:
    p = Pair(client=TcpParameters(request_timeout=5.0, csm_timeout=3.0))
    p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    explicit = p.client.send_request(Message.request(Code.GET, "/b"), p.now, timeout=1.0)
    assert p.client.next_deadline() == 1.0
    p.client.handle_timers(1.0)
    [fail] = p.client.events
    assert isinstance(fail, ExchangeFailed) and fail.exchange is explicit
    assert isinstance(fail.error, RequestTimeout)
    # The server never sent its CSM (its outbox is not pumped): abort after csm_timeout.
    assert p.client.next_deadline() == 3.0
    p.client.handle_timers(3.0)
    assert p.client.closed and "no CSM" in p.client.close_reason


def test_keepalive_ping_and_dead_peer() -> None:
    p = Pair(client=TcpParameters(keepalive_interval=10.0, ping_timeout=2.0))
    p.pump()
    assert p.client.next_deadline() == 10.0
    p.now = 10.0
    p.client.handle_timers(p.now)
    [ping] = p.frames(p.client)
    assert ping.code == Code.PING
    # A live peer answers; the next Ping is due 10 s after the Pong.
    p.server.receive_data(encode_tcp(ping), p.now)
    p.now = 10.5
    p.client.receive_data(b"".join(p.server.outbox), p.now)
    p.server.outbox.clear()
    assert p.client.next_deadline() == 20.5
    # A dead one does not: the connection is aborted ping_timeout later.
    p.now = 20.5
    p.client.handle_timers(p.now)
    p.client.outbox.clear()
    p.now = 22.5
    p.client.handle_timers(p.now)
    assert p.client.closed and "keep-alive" in p.client.close_reason


def test_idle_timeout_releases() -> None:
    p = Pair(server=TcpParameters(idle_timeout=30.0))
    p.pump()
    p.now = 29.0
    p.client.send_request(Message.request(Code.GET, "/a"), p.now)
    p.pump()
    [req] = p.requests["server"]
    p.server.respond(req, req.response(Code.CONTENT), p.now)
    p.pump()
    assert p.server.next_deadline() == 59.0
    p.now = 59.0
    p.server.handle_timers(p.now)
    [release] = p.frames(p.server)
    assert release.code == Code.RELEASE and b"idle" in release.payload
    assert p.server.closed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_arbitrary_bytes_after_a_csm_never_raise(data: bytes, chunk: int) -> None:
    conn = TcpConnection(("peer", 1), 0.0, TcpParameters(max_message_size=256))
    conn.receive_data(encode_tcp(build_csm(Capabilities(4096, True))), 0.0)
    for i in range(0, len(data), chunk):
        for request in conn.receive_data(data[i:i + chunk], 1.0):
            conn.respond(request, request.response(Code.CONTENT), 1.0)
    # Either still open, or closed with an Abort that says why.
    if conn.closed:
        assert conn.close_reason
