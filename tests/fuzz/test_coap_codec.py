"""The CoAP message codec (UDP datagrams), RFC 8323 framing (TCP streams) and the typed option
accessors the LwM2M layers read, on hostile bytes: a message or a CoapError, quickly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.client.request_paths import (
    accepted_format,
    composite_format,
    lwm2m_path,
    path_list_format,
    payload_format,
)
from aiolwm2m.coap.codec import decode_udp
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.tcp_framing import FrameParser, decode_tcp

from .harness import FUZZ, survives
from .strategies import blobs


def _option(delta_nibble: int, length_nibble: int, extra: bytes, value: bytes) -> bytes:
    return bytes((delta_nibble << 4 | length_nibble,)) + extra + value


# Option headers of every shape (extended deltas and lengths, the reserved nibble 15) with
# values of any length: a Content-Format of 300 bytes is legal on the wire.
OPTIONS = st.lists(st.builds(_option, st.integers(0, 15), st.integers(0, 15),
                             st.binary(max_size=2), st.binary(max_size=300)),
                   max_size=8).map(b"".join)


def _long_uint_option(number: int, size: int) -> bytes:
    """A GET whose option ``number`` (Content-Format 12, Accept 17, Observe 6...) holds
    ``size`` bytes: its integer has no decimal repr beyond ~1,800 bytes (int's limit)."""
    head = bytes((0x41, 0x01, 0, 1, 0x00))  # CON GET, message id 1, a 1-byte token
    delta = bytes((number << 4 | 14,)) if number < 13 else bytes((13 << 4 | 14, number - 13))
    return head + delta + (size - 269).to_bytes(2, "big") + b"\xff" * size


LONG_UINTS = st.builds(_long_uint_option, st.sampled_from([6, 12, 17, 23, 27, 28, 60]),
                       st.integers(min_value=300, max_value=4000))
DATAGRAMS = st.one_of(
    LONG_UINTS,
    blobs(),
    st.builds(lambda head, token, options, payload: head + token + options + payload,
              st.binary(min_size=4, max_size=4), st.binary(max_size=8), OPTIONS,
              st.one_of(st.just(b""), st.binary(max_size=64).map(lambda p: b"\xff" + p))),
    st.builds(lambda tkl, options: bytes((0x40 | tkl, 0x01, 0, 1)) + bytes(tkl) + options,
              st.integers(0, 8), OPTIONS),
)


def _read_everything(msg: Message) -> None:
    """What the interfaces read of a request before they look at its payload."""
    for accessor in ("uri_path", "uri_query", "location_path", "location_query", "uri_host",
                     "uri_port", "content_format", "accept", "observe", "max_age", "size1",
                     "size2", "block1", "block2", "etag"):
        getattr(msg, accessor)
    survives(CoapError, lwm2m_path, msg.uri_path)
    survives(CoapError, payload_format, msg.content_format)
    survives(CoapError, accepted_format, msg.accept, 11542)
    survives(CoapError, composite_format, msg.content_format)
    survives(CoapError, path_list_format, msg.content_format)
    repr(msg)


@FUZZ
@given(DATAGRAMS)
def test_udp_datagrams(datagram: bytes) -> None:
    msg = survives(CoapError, decode_udp, datagram)
    if msg is not None:
        _read_everything(msg)


@FUZZ
@given(st.lists(DATAGRAMS, max_size=6), st.integers(min_value=0, max_value=1 << 20))
def test_tcp_streams(chunks: list[bytes], max_message_size: int) -> None:
    # The same bytes as one frame, and as a stream cut at arbitrary points.
    survives(CoapError, decode_tcp, b"".join(chunks), max_message_size)
    parser = FrameParser(max_message_size)
    for chunk in chunks:
        messages = survives(CoapError, parser.feed, chunk)
        if messages is None:  # the stream is broken for good
            break
        for msg in messages:
            _read_everything(msg)
