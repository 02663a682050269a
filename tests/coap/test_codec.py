from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import MessageFormatError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber


def test_get_request_bytes() -> None:
    # CON GET, mid 0x7d34, token 0x71, Uri-Path "temperature" (RFC 7252 Figure 16 style).
    msg = Message(MessageType.CON, Code.GET, 0x7D34, b"\x71")
    msg.uri_path = ("temperature",)
    data = encode_udp(msg)
    assert data == bytes.fromhex("41017d3471") + bytes([0xBB]) + b"temperature"
    back = decode_udp(data)
    assert back == msg
    assert back.uri_path == ("temperature",)


def test_piggybacked_response_bytes() -> None:
    msg = Message(MessageType.ACK, Code.CONTENT, 0x7D34, b"\x71", payload=b"22.3 C")
    assert encode_udp(msg) == bytes.fromhex("61457d3471ff") + b"22.3 C"


@pytest.mark.parametrize(
    ("number", "length", "header"),
    [
        (12, 0, "c0"),  # delta and length in the nibbles
        (13, 1, "d100"),  # delta 13 -> one extension byte of 0
        (268, 1, "d1ff"),  # largest one-byte extension
        (269, 1, "e10000"),  # two-byte extension
        (65535, 1, "e1fef2"),  # option number at the top of the range
        (3, 13, "3d00"),  # length 13 -> extension
        (3, 269, "3e0000"),
    ],
)
def test_extended_option_encodings(number: int, length: int, header: str) -> None:
    value = b"x" * length
    msg = Message(MessageType.NON, Code.GET, 1, b"", [(number, value)])
    data = encode_udp(msg)
    assert data[4:4 + len(header) // 2].hex() == header
    assert decode_udp(data).options == [(number, value)]


def test_options_are_sorted_on_encode_and_repeats_keep_order() -> None:
    msg = Message(MessageType.CON, Code.GET, 5, b"t")
    msg.options = [(15, b"b=2"), (11, b"x"), (15, b"a=1"), (11, b"y")]
    back = decode_udp(encode_udp(msg))
    assert back.uri_path == ("x", "y")
    assert back.uri_query == ["b=2", "a=1"]


def test_empty_message() -> None:
    assert decode_udp(bytes.fromhex("60001234")) == Message(MessageType.ACK, 0, 0x1234)


BAD = {
    "truncated header": b"\x40\x01\x00",
    "token length 9": bytes.fromhex("4901000102030405060708090a"),
    "token length 15": bytes.fromhex("4f010001"),
    "token past the end": bytes.fromhex("44010001aabb"),
    "option length past end": bytes.fromhex("400100011b") + b"ab",
    "option delta 15": bytes.fromhex("40010001f1"),
    "option length 15": bytes.fromhex("400100011f"),
    "truncated extended delta": bytes.fromhex("40010001d1"),
    "payload marker without payload": bytes.fromhex("40010001ff"),
    "empty message with token": bytes.fromhex("41000001aa"),
    "empty message with payload": bytes.fromhex("40000001ff00"),
    "reserved class 1": bytes.fromhex("40200001"),
    "reserved class 6": bytes.fromhex("40c00001"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_messages_raise_format_error_with_ids(name: str) -> None:
    with pytest.raises(MessageFormatError) as info:
        decode_udp(BAD[name])
    if name != "truncated header":
        assert info.value.mid == 1 or info.value.mid is not None
        assert info.value.mtype is not None


def test_unknown_version_is_not_resettable() -> None:
    with pytest.raises(MessageFormatError) as info:
        decode_udp(bytes.fromhex("80010001"))
    assert info.value.mid is None


def test_encode_rejects_long_token() -> None:
    with pytest.raises(ValueError):
        encode_udp(Message(MessageType.CON, Code.GET, 1, b"123456789"))


option_values = st.binary(max_size=300)
options = st.lists(st.tuples(st.integers(1, 2000), option_values), max_size=8).map(
    lambda xs: sorted(xs, key=lambda o: o[0]))
messages = st.builds(
    Message,
    mtype=st.sampled_from(list(MessageType)),
    code=st.sampled_from([c for c in Code if c < 192 and c != 0]),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    options=options,
    payload=st.binary(max_size=300),
)


@given(messages)
@settings(max_examples=300)
def test_roundtrip(msg: Message) -> None:
    assert decode_udp(encode_udp(msg)) == msg


@given(st.binary(max_size=200))
@settings(max_examples=1000)
def test_arbitrary_bytes_raise_only_format_errors(data: bytes) -> None:
    try:
        msg = decode_udp(data)
    except MessageFormatError:
        return
    # Whatever decodes must encode back to the same bytes (the encoding is canonical).
    assert encode_udp(msg) == data or msg.code == 0


def test_typed_accessors() -> None:
    msg = Message.request(Code.GET, "/a/b%2Fc", query=["x=1", "flag"], accept=11542,
                          observe=0)
    assert msg.uri_path == ("a", "b/c")
    assert msg.path == "/a/b%2Fc"
    assert msg.query_params() == {"x": "1", "flag": ""}
    assert msg.accept == 11542
    assert msg.observe == 0
    assert msg.get_option(OptionNumber.OBSERVE) == b""
    msg.content_format = 0
    assert msg.get_option(OptionNumber.CONTENT_FORMAT) == b""
    msg.max_age = 70000
    assert msg.get_option(OptionNumber.MAX_AGE) == (70000).to_bytes(3, "big")
    assert [n for n, _ in msg.options] == sorted(n for n, _ in msg.options)
