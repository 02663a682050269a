"""RFC 8323 framing: shortest encoding, every valid length form, incremental parsing, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.tcp_framing import (
    FrameParser,
    FrameTooLarge,
    FramingError,
    decode_tcp,
    encode_tcp,
    frame_size,
    length_header,
)

# Body lengths at the edges of every length class: Len nibble 0-12, 13 (+1 byte),
# 14 (+2 bytes), 15 (+4 bytes).
EDGES = [0, 2, 12, 13, 14, 268, 269, 270, 65804, 65805, 65806, 200_000]


def test_ping_example_from_the_rfc() -> None:
    # RFC 8323 Figure 8: Ping with a one-byte token 0x42 is 01 e2 42.
    ping = Message(0, Code.PING, token=b"\x42")
    assert encode_tcp(ping) == b"\x01\xe2\x42"
    assert decode_tcp(b"\x01\xe3\x42").code == Code.PONG


@pytest.mark.parametrize("body", EDGES)
def test_length_classes_use_the_shortest_form(body: int) -> None:
    header = length_header(body, 3)
    expected = 1 if body < 13 else 2 if body < 269 else 3 if body < 65805 else 5
    assert len(header) == expected
    assert header[0] & 0x0F == 3
    msg = Message(0, Code.CONTENT, token=b"abc", payload=b"x" * (body - 1) if body else b"")
    frame = encode_tcp(msg)
    assert len(frame) == frame_size(msg) == expected + 1 + 3 + body
    back = decode_tcp(frame)
    assert back.payload == msg.payload and back.token == b"abc"


@pytest.mark.parametrize("body", EDGES)
def test_hand_built_headers_of_every_class_decode(body: int) -> None:
    """The offsets make the classes disjoint (13-268, 269-65804, 65805-): one valid form
    per length, built here by hand rather than by the encoder under test."""
    if body < 13:
        header = bytes(((body << 4) | 1,))
    elif body < 269:
        header = bytes((0xD1, body - 13))
    elif body < 65805:
        header = bytes((0xE1,)) + (body - 269).to_bytes(2, "big")
    else:
        header = bytes((0xF1,)) + (body - 65805).to_bytes(4, "big")
    payload = b"p" * (body - 1) if body else b""
    frame = header + bytes((Code.CONTENT,)) + b"\x07" + (b"\xff" + payload if body else b"")
    msg = decode_tcp(frame)
    assert msg.token == b"\x07" and msg.payload == payload


def test_extended_length_counts_from_its_offset() -> None:
    # Len 14 with 0x0000 announces 269 bytes, not 0: the frame is incomplete.
    parser = FrameParser(10_000)
    assert parser.feed(b"\xe1\x00\x00\x45\x01") == []
    assert parser.buffered == 5


def test_incremental_feeding_in_every_split() -> None:
    msgs = [Message(0, Code.GET, token=b"t1", options=[(11, b"a" * 300)]),
            Message(0, Code.CONTENT, token=b"", payload=b"z" * 70_000),
            Message(0, Code.CSM, options=[(2, b"\x04\x00")])]
    stream = b"".join(encode_tcp(m) for m in msgs)
    for step in (1, 2, 3, 7, 100, 4096):
        parser = FrameParser(100_000)
        out: list[Message] = []
        for i in range(0, len(stream), step):
            out += parser.feed(stream[i:i + step])
        assert [(m.code, m.token, m.options, m.payload) for m in out] == \
            [(m.code, m.token, m.options, m.payload) for m in msgs]
        assert parser.buffered == 0


def test_too_large_is_refused_from_the_header_alone() -> None:
    parser = FrameParser(1152)
    with pytest.raises(FrameTooLarge) as info:
        # 32-bit extended length announcing ~1 MB; no body sent at all.
        parser.feed(b"\xf0" + (1_000_000 - 65805).to_bytes(4, "big"))
    assert info.value.limit == 1152 and info.value.size > 1_000_000
    # Exactly at the limit is fine: code + token + body == max_message_size.
    ok = FrameParser(100)
    frame = encode_tcp(Message(0, Code.CONTENT, token=b"1234", payload=b"q" * 94))
    assert len(ok.feed(frame)) == 1


@pytest.mark.parametrize("data, why", [
    (b"\x09\x45", "reserved token length"),
    (b"\x10\x45\xff", "payload marker"),
    (b"\x10\x45\xf1", "nibble 15"),
    (b"\x20\x45\xd1\x00", "runs past"),
])
def test_malformed_frames(data: bytes, why: str) -> None:
    with pytest.raises(FramingError, match=why):
        FrameParser(1152).feed(data)


def test_token_too_long_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        encode_tcp(Message(0, Code.GET, token=b"123456789"))


option_numbers = st.integers(0, 2000)
options = st.lists(st.tuples(option_numbers, st.binary(max_size=300)), max_size=6).map(
    lambda opts: sorted(opts, key=lambda o: o[0]))
messages = st.builds(
    lambda code, token, opts, payload: Message(0, code, 0, token, opts, payload),
    st.integers(0, 255), st.binary(max_size=8), options,
    st.one_of(st.binary(max_size=40), st.sampled_from([b"x" * 269, b"y" * 70_000])))


@settings(max_examples=300, deadline=None)
@given(messages, st.integers(1, 5000))
def test_round_trip(msg: Message, chunk: int) -> None:
    frame = encode_tcp(msg)
    assert len(frame) == frame_size(msg)
    parser = FrameParser(1 << 20)
    out: list[Message] = []
    for i in range(0, len(frame), chunk):
        out += parser.feed(frame[i:i + chunk])
    assert len(out) == 1
    back = out[0]
    assert (back.code, back.token, back.options, back.payload) == \
        (msg.code, msg.token, msg.options, msg.payload)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64))
def test_arbitrary_bytes_only_raise_the_framing_error(data: bytes, chunk: int) -> None:
    parser = FrameParser(256)
    try:
        for i in range(0, len(data), chunk):
            for msg in parser.feed(data[i:i + chunk]):
                assert isinstance(msg.options, list)
    except FramingError:
        pass
