"""The sans-IO message layer, driven with bytes and an explicit clock."""

from __future__ import annotations

import random

import pytest

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import RequestRejected, RequestTimeout
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import (
    ExchangeFailed,
    MessageAcknowledged,
    MessageLayer,
    MessageRejected,
    MessageTimedOut,
    ResponseReceived,
)
from aiolwm2m.coap.params import TransmissionParameters

CON, NON, ACK, RST = MessageType.CON, MessageType.NON, MessageType.ACK, MessageType.RST
PEER = ("192.0.2.1", 5683)


def layer(**kw: object) -> MessageLayer:
    return MessageLayer(rng=random.Random(7), **kw)  # type: ignore[arg-type]


def sent(ml: MessageLayer) -> list[Message]:
    out = [decode_udp(d) for d, _ in ml.outbox]
    ml.outbox.clear()
    return out


def get(mid: int = 10, token: bytes = b"tk", mtype: int = CON, path: str = "/x") -> bytes:
    msg = Message.request(Code.GET, path, token=token, confirmable=mtype == CON)
    msg.mid = mid
    return encode_udp(msg)


def test_request_is_returned_and_piggybacked_response_cached_for_duplicates() -> None:
    ml = layer()
    req = ml.receive(get(), PEER, 0.0)
    assert req is not None and req.uri_path == ("x",) and req.remote == PEER
    ml.respond(req, req.response(Code.CONTENT, b"hi"), 0.0)
    [resp] = sent(ml)
    assert (resp.mtype, resp.mid, resp.token, resp.payload) == (ACK, 10, b"tk", b"hi")
    # A retransmission of the request gets the same ACK and is not processed again.
    assert ml.receive(get(), PEER, 1.0) is None
    [again] = sent(ml)
    assert again == resp
    assert ml.stats.duplicates == 1
    # Same message ID from another peer is a different message.
    assert ml.receive(get(), ("192.0.2.2", 5683), 1.0) is not None


def test_duplicate_while_pending_is_ignored_then_separate_response_is_confirmable() -> None:
    ml = layer()
    req = ml.receive(get(), PEER, 0.0)
    assert req is not None
    assert ml.receive(get(), PEER, 0.5) is None
    assert sent(ml) == []
    ml.acknowledge(req, 1.0)
    [ack] = sent(ml)
    assert (ack.mtype, ack.code, ack.mid) == (ACK, 0, 10)
    assert ml.receive(get(), PEER, 2.0) is None
    assert sent(ml) == [ack]  # duplicates now get the empty ACK
    ml.respond(req, req.response(Code.CONTENT, b"late"), 3.0)
    [resp] = sent(ml)
    assert resp.mtype == CON and resp.token == b"tk" and resp.mid != 10
    ml.receive(encode_udp(Message(ACK, 0, resp.mid)), PEER, 3.1)
    # exactly: MessageRejected and MessageTimedOut are subclasses
    assert type(ml.events[-1]) is MessageAcknowledged
    assert ml.pending_transmissions == 0


def test_non_request_gets_non_response() -> None:
    ml = layer()
    req = ml.receive(get(mtype=NON), PEER, 0.0)
    assert req is not None
    ml.respond(req, req.response(Code.CONTENT, b"x"), 0.0)
    [resp] = sent(ml)
    assert resp.mtype == NON and resp.token == b"tk"
    assert ml.receive(get(mtype=NON), PEER, 0.1) is None  # NON duplicates are dropped


def test_retransmission_schedule_and_timeout() -> None:
    params = TransmissionParameters(ack_timeout=2.0, ack_random_factor=1.5, max_retransmit=4)
    ml = layer(params=params)
    ex = ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    first = sent(ml)[0]
    assert first.mtype == CON and first.token == ex.token and len(ex.token) == 8
    times = []
    now = 0.0
    while True:
        deadline = ml.next_deadline()
        assert deadline is not None
        now = deadline
        ml.handle_timers(now)
        if ml.events:
            break
        [again] = sent(ml)
        assert again == first
        times.append(now)
    assert len(times) == 4
    initial = times[0]
    assert 2.0 <= initial <= 3.0
    # Each timeout doubles: the gaps are t0*2, t0*4, t0*8, and the failure comes t0*16 after
    # the last retransmission, i.e. at t0 * 31 = MAX_TRANSMIT_WAIT for this random t0.
    assert times[1] == pytest.approx(initial * 3)
    assert times[3] == pytest.approx(initial * 15)
    assert now == pytest.approx(initial * 31)
    assert now <= params.max_transmit_wait
    [ev] = ml.events
    assert isinstance(ev, ExchangeFailed) and isinstance(ev.error, RequestTimeout)
    assert ml.next_deadline() is None


def test_piggybacked_response_completes_exchange() -> None:
    ml = layer()
    ex = ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    req = sent(ml)[0]
    resp = Message(ACK, Code.CONTENT, req.mid, req.token, payload=b"ok")
    ml.receive(encode_udp(resp), PEER, 0.1)
    [ev] = ml.events
    assert isinstance(ev, ResponseReceived) and ev.exchange is ex and ev.response.payload == b"ok"
    assert ml.next_deadline() is None and ml.pending_exchanges == 0
    # A late duplicate of that ACK is ignored.
    ml.events.clear()
    ml.receive(encode_udp(resp), PEER, 0.2)
    assert ml.events == [] and sent(ml) == []


def test_ack_with_wrong_token_is_not_a_response() -> None:
    ml = layer()
    ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    req = sent(ml)[0]
    ml.receive(encode_udp(Message(ACK, Code.CONTENT, req.mid, b"other")), PEER, 0.1)
    assert ml.events == [] and ml.pending_transmissions == 1


def test_empty_ack_then_separate_response() -> None:
    ml = layer(params=TransmissionParameters(response_timeout=30.0))
    ex = ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    req = sent(ml)[0]
    ml.receive(encode_udp(Message(ACK, 0, req.mid)), PEER, 0.5)
    assert ex.acknowledged and ml.events == []
    assert ml.next_deadline() == pytest.approx(30.5)
    sep = Message(CON, Code.CONTENT, 999, req.token, payload=b"sep")
    ml.receive(encode_udp(sep), PEER, 5.0)
    [ack] = sent(ml)
    assert (ack.mtype, ack.mid, ack.code) == (ACK, 999, 0)
    [ev] = ml.events
    assert isinstance(ev, ResponseReceived) and ev.response.payload == b"sep"
    # The separate response retransmitted: ACKed again, not delivered again.
    ml.events.clear()
    ml.receive(encode_udp(sep), PEER, 6.0)
    assert sent(ml) == [ack] and ml.events == []


def test_separate_response_timeout_after_ack() -> None:
    ml = layer(params=TransmissionParameters(response_timeout=30.0))
    ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    req = sent(ml)[0]
    ml.receive(encode_udp(Message(ACK, 0, req.mid)), PEER, 0.5)
    ml.handle_timers(30.4)
    assert ml.events == []
    ml.handle_timers(30.6)
    [ev] = ml.events
    assert isinstance(ev, ExchangeFailed) and isinstance(ev.error, RequestTimeout)


def test_reset_rejects_request() -> None:
    ml = layer()
    ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    req = sent(ml)[0]
    ml.receive(encode_udp(Message(RST, 0, req.mid)), PEER, 0.1)
    [ev] = ml.events
    assert isinstance(ev, ExchangeFailed) and isinstance(ev.error, RequestRejected)


def test_unknown_confirmable_response_is_reset() -> None:
    ml = layer()
    ml.receive(encode_udp(Message(CON, Code.CONTENT, 5, b"zz")), PEER, 0.0)
    [rst] = sent(ml)
    assert (rst.mtype, rst.mid) == (RST, 5)
    ml.receive(encode_udp(Message(NON, Code.CONTENT, 6, b"zz")), PEER, 0.0)
    [rst] = sent(ml)
    assert (rst.mtype, rst.mid) == (RST, 6)


def test_ping_is_answered_with_reset_and_our_ping_completes() -> None:
    ml = layer()
    assert ml.receive(encode_udp(Message(CON, 0, 77)), PEER, 0.0) is None
    [rst] = sent(ml)
    assert (rst.mtype, rst.code, rst.mid) == (RST, 0, 77)
    ex = ml.send_ping(PEER, 0.0)
    ping = sent(ml)[0]
    assert ping.code == 0 and ping.mtype == CON and ping.token == b""
    ml.receive(encode_udp(Message(RST, 0, ping.mid)), PEER, 0.01)
    [ev] = ml.events
    assert isinstance(ev, ResponseReceived) and ev.exchange is ex


def test_format_errors_reset_confirmable_and_ignore_others() -> None:
    ml = layer()
    assert ml.receive(bytes.fromhex("49010042") + bytes(9), PEER, 0.0) is None  # TKL 9
    [rst] = sent(ml)
    assert (rst.mtype, rst.mid) == (RST, 0x42)
    assert ml.receive(bytes.fromhex("59010042") + bytes(9), PEER, 0.0) is None  # NON
    assert ml.receive(b"\x40", PEER, 0.0) is None
    assert ml.receive(bytes.fromhex("80010042"), PEER, 0.0) is None  # version 2
    assert sent(ml) == []
    assert ml.stats.format_errors == 4


def test_unknown_critical_option_gets_bad_option() -> None:
    ml = layer()
    msg = Message.request(Code.GET, "/a", token=b"t")
    msg.mid = 3
    msg.add_option(9, b"x")  # odd: critical, and not registered
    assert ml.receive(encode_udp(msg), PEER, 0.0) is None
    [resp] = sent(ml)
    assert resp.code == Code.BAD_OPTION and resp.mtype == ACK and resp.mid == 3
    assert b"9" in resp.payload
    msg.mtype = NON
    msg.mid = 4
    assert ml.receive(encode_udp(msg), PEER, 0.0) is None
    assert sent(ml) == []


def test_unknown_elective_and_reserved_options_are_ignored() -> None:
    ml = layer()
    msg = Message.request(Code.GET, "/a", token=b"t")
    msg.mid = 3
    for n in (128, 132, 136, 140, 2048):
        msg.add_option(n, b"junk")
    req = ml.receive(encode_udp(msg), PEER, 0.0)
    assert req is not None and req.uri_path == ("a",)


def test_repeated_non_repeatable_critical_option_is_bad() -> None:
    ml = layer()
    msg = Message(CON, Code.GET, 8, b"t", [(3, b"h1"), (3, b"h2")])
    ml.receive(encode_udp(msg), PEER, 0.0)
    [resp] = sent(ml)
    assert resp.code == Code.BAD_OPTION


def test_nstart_queues_confirmable_requests_per_peer() -> None:
    ml = layer()
    a = ml.send_request(Message.request(Code.GET, "/a"), PEER, 0.0)
    b = ml.send_request(Message.request(Code.GET, "/b"), PEER, 0.0)
    other = ml.send_request(Message.request(Code.GET, "/c"), ("192.0.2.9", 1), 0.0)
    out = sent(ml)
    assert [m.uri_path for m in out] == [("a",), ("c",)]
    ml.receive(encode_udp(Message(ACK, Code.CONTENT, a.mid, a.token)), PEER, 0.1)
    [nxt] = sent(ml)
    assert nxt.uri_path == ("b",) and nxt.mid == b.mid
    assert other.mid != a.mid


def test_observe_notifications_are_ordered() -> None:
    ml = layer()
    ex = ml.send_request(Message.request(Code.GET, "/o", observe=0), PEER, 0.0)
    req = sent(ml)[0]

    def notify(seq: int, mid: int, now: float, mtype: int = NON) -> None:
        m = Message(mtype, Code.CONTENT, mid, req.token, payload=str(seq).encode())
        m.observe = seq
        ml.receive(encode_udp(m), PEER, now)

    first = Message(ACK, Code.CONTENT, req.mid, req.token, payload=b"5")
    first.observe = 5
    ml.receive(encode_udp(first), PEER, 0.1)
    notify(7, 100, 1.0)
    notify(6, 101, 2.0)  # older: dropped
    notify(8, 102, 3.0, CON)
    notify(2, 103, 200.0)  # older number, but 128 s later: fresh again
    payloads = [e.response.payload for e in ml.events if isinstance(e, ResponseReceived)]
    assert payloads == [b"5", b"7", b"8", b"2"]
    assert not ex.done
    ml.cancel(ex, 201.0)
    notify(3, 104, 202.0)
    assert sent(ml)[-1].mtype == RST


def test_wraparound_freshness() -> None:
    from aiolwm2m.coap.observe import is_fresh

    assert is_fresh(0xFFFFFF, 0.0, 1, 1.0)
    assert not is_fresh(1, 0.0, 0xFFFFFF, 1.0)
    assert is_fresh(1, 0.0, 0xFFFFFF, 129.0)


def test_notification_fate_events() -> None:
    ml = layer(params=TransmissionParameters(max_retransmit=1))
    note = Message(CON, Code.CONTENT, 0, b"obs", payload=b"1")
    mid = ml.send_message(note, PEER, 0.0)
    ml.receive(encode_udp(Message(RST, 0, mid)), PEER, 0.1)
    assert isinstance(ml.events[-1], MessageRejected) and ml.events[-1].token == b"obs"
    non = Message(NON, Code.CONTENT, 0, b"obs2", payload=b"2")
    mid = ml.send_message(non, PEER, 0.2)
    ml.receive(encode_udp(Message(RST, 0, mid)), PEER, 0.3)
    assert isinstance(ml.events[-1], MessageRejected) and ml.events[-1].token == b"obs2"
    ml.send_message(Message(CON, Code.CONTENT, 0, b"obs3"), PEER, 1.0)
    ml.handle_timers(100.0)
    ml.handle_timers(200.0)
    assert isinstance(ml.events[-1], MessageTimedOut)


def test_dedup_memory_is_bounded() -> None:
    ml = MessageLayer(rng=random.Random(1), dedup_capacity=1000)
    for i in range(20000):
        req = ml.receive(get(mid=i & 0xFFFF, token=i.to_bytes(4, "big")),
                         ("10.0.0.1", i), float(i) / 1000)
        assert req is not None
        ml.respond(req, req.response(Code.CONTENT), 0.0)
        ml.outbox.clear()
    assert len(ml._dedup) <= 1000


def test_message_ids_wrap() -> None:
    ml = layer()
    first = ml.new_mid()
    mids = [ml.new_mid() for _ in range(0x10000)]
    assert mids[-1] == first and len(set(mids)) == 0x10000


def test_error_replies_are_cut_to_the_request_size_plus_slack() -> None:
    ml = layer(error_reply_slack=64)
    data = get(mid=20)
    req = ml.receive(data, PEER, 0.0)
    assert req is not None
    echo = ("é" * 500).encode()  # two bytes a character: the cut must not split one
    ml.respond(req, req.response(Code.BAD_REQUEST, echo, 0), 0.0)
    (reply,) = ml.outbox
    assert len(reply[0]) <= len(data) + 64
    diagnostic = decode_udp(reply[0]).payload
    assert diagnostic and echo.startswith(diagnostic)
    diagnostic.decode("utf-8")
    ml.outbox.clear()
    # Success replies are content the client asked for, and are left alone.
    req = ml.receive(get(mid=21), PEER, 0.0)
    assert req is not None
    ml.respond(req, req.response(Code.CONTENT, bytes(1000)), 0.0)
    assert len(decode_udp(ml.outbox[0][0]).payload) == 1000
    ml.outbox.clear()
    # Separate (CON) error responses are cut too.
    req = ml.receive(get(mid=22), PEER, 0.0)
    assert req is not None
    ml.acknowledge(req, 0.0)
    ml.respond(req, req.response(Code.INTERNAL_SERVER_ERROR, bytes(1000), 0), 1.0)
    assert len(ml.outbox[-1][0]) <= len(data) + 64


def test_without_slack_error_replies_are_whole() -> None:
    ml = layer()
    req = ml.receive(get(mid=20), PEER, 0.0)
    assert req is not None
    ml.respond(req, req.response(Code.BAD_REQUEST, bytes(1000), 0), 0.0)
    assert len(decode_udp(ml.outbox[0][0]).payload) == 1000
