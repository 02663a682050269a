"""Signalling messages (RFC 8323 section 5): CSM, Ping/Pong, Release, Abort."""

from __future__ import annotations

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.signals import (
    BASE_CAPABILITIES,
    Capabilities,
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
from aiolwm2m.coap.tcp_framing import decode_tcp, encode_tcp


def test_csm_round_trip_and_bert() -> None:
    caps = Capabilities(65536, True)
    msg = decode_tcp(encode_tcp(build_csm(caps)))
    assert msg.code == Code.CSM
    assert parse_csm(msg) == caps and caps.bert
    assert not Capabilities(1152, True).bert and not Capabilities(65536, False).bert
    # The base value needs no option at all.
    assert build_csm(BASE_CAPABILITIES).options == []


def test_csm_values_are_cumulative() -> None:
    first = parse_csm(Message(0, Code.CSM, options=[(4, b"")]))
    assert first == Capabilities(1152, True)
    second = parse_csm(Message(0, Code.CSM, options=[(2, b"\x10\x00")]), first)
    assert second == Capabilities(4096, True)
    # An empty CSM is a no-op.
    assert parse_csm(Message(0, Code.CSM), second) == second


def test_csm_unknown_critical_and_bad_values() -> None:
    with pytest.raises(SignalError) as info:
        parse_csm(Message(0, Code.CSM, options=[(9, b"x")]))
    assert info.value.option == 9
    with pytest.raises(SignalError) as info:
        parse_csm(Message(0, Code.CSM, options=[(2, b"\x01\x02\x03\x04\x05")]))
    assert info.value.option == 2
    with pytest.raises(SignalError):
        parse_csm(Message(0, Code.CSM, options=[(4, b"x")]))
    # Unknown elective options are ignored.
    assert parse_csm(Message(0, Code.CSM, options=[(6, b"?"), (200, b"")])) == BASE_CAPABILITIES


def test_option_numbers_are_scoped_to_their_code() -> None:
    # Option 1 is unknown and critical for every code; option 2 means something different
    # in each code but is elective everywhere.
    for code in (Code.PING, Code.PONG, Code.RELEASE):
        check_signal_options(Message(0, code, options=[(2, b"")]))
        with pytest.raises(SignalError):
            check_signal_options(Message(0, code, options=[(1, b"")]))


def test_ping_pong_custody() -> None:
    assert has_custody(build_ping(b"t", custody=True))
    assert not has_custody(build_pong(b"t"))
    assert build_pong(b"\x42").token == b"\x42"


def test_release_and_abort() -> None:
    rel = parse_release(decode_tcp(encode_tcp(build_release("bye", "[::1]:5684", 60))))
    assert rel.alternative_addresses == ("[::1]:5684",) and rel.hold_off == 60
    assert rel.diagnostic == "bye"
    # An unusable elective value (Hold-Off of 5 bytes) is ignored, not fatal.
    odd = Message(0, Code.RELEASE, options=[(4, b"\x00" * 5)])
    assert parse_release(odd).hold_off is None
    ab = parse_abort(decode_tcp(encode_tcp(build_abort("bad CSM", 9))))
    assert ab.diagnostic == "bad CSM" and ab.bad_csm_option == 9
    assert parse_abort(Message(0, Code.ABORT)).bad_csm_option is None
