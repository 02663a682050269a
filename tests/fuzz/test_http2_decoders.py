"""The HTTP/2 binding's decoders on hostile input: downlink envelopes (whole and fed in
pieces), answer-stream items and rejections, multipart-core bodies, the answer headers,
media types and targets, and the server's connection core on arbitrary bytes (with answer
streams), give a value or their own error, quickly."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.http2.answers import decode_answers, decode_rejection
from aiolwm2m.http2.envelope import EnvelopeError, EnvelopeReader, SequenceSplitter, decode_item
from aiolwm2m.http2.h2_state import PREFACE
from aiolwm2m.http2.limits import Http2Limits
from aiolwm2m.http2.mapping import MappingError, accepted_format, content_format
from aiolwm2m.http2.messages import HttpRefusal, parse_parts, response_from_answer, split_target
from aiolwm2m.http2.multipart import MultipartError, decode_multipart
from aiolwm2m.http2.server_core import ServerCore, UploadItems
from aiolwm2m.lwm2m.formats.cbor_support import dump

from .harness import FUZZ, survives
from .strategies import blobs, cbor_items, texts

_FIELD = st.one_of(st.text(max_size=40), st.integers(-2, 1 << 40), st.binary(max_size=64),
                   st.lists(st.text(max_size=10), max_size=20), st.none(), st.booleans())
ENVELOPE_MAPS = st.dictionaries(st.one_of(st.integers(0, 9), st.text(max_size=3)), _FIELD,
                                max_size=10)
ENVELOPE_BODIES = st.one_of(blobs(), cbor_items().map(dump), ENVELOPE_MAPS.map(dump),
                            st.lists(ENVELOPE_MAPS, max_size=70).map(dump))


def framed(body: bytes) -> bytes:
    return b"\xd8\x18\x5a" + len(body).to_bytes(4, "big") + body


# Half the shared example count: their inputs are large CBOR structures, slow to build.
HALF = settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 2))


@HALF
@given(ENVELOPE_BODIES)
def test_envelope_items(body: bytes) -> None:
    survives(EnvelopeError, decode_item, body)


@HALF
@given(st.lists(ENVELOPE_BODIES, max_size=4), st.lists(st.integers(1, 64), max_size=8),
       blobs())
def test_envelope_stream_in_pieces(bodies: list[bytes], cuts: list[int], tail: bytes) -> None:
    data = b"".join(framed(b) for b in bodies) + tail
    reader = EnvelopeReader(1 << 16)
    pos = 0
    for cut in cuts:
        if survives(EnvelopeError, reader.feed, data[pos:pos + cut]) is None:
            return
        pos += cut
    survives(EnvelopeError, reader.feed, data[pos:])


@HALF
@given(ENVELOPE_BODIES)
def test_answer_items_and_rejections(body: bytes) -> None:
    survives(EnvelopeError, decode_answers, body)
    survives(EnvelopeError, decode_rejection, body)


@HALF
@given(st.lists(ENVELOPE_BODIES, max_size=4), st.lists(st.integers(1, 64), max_size=8),
       blobs())
def test_sequence_splitter_in_pieces(bodies: list[bytes], cuts: list[int], tail: bytes
                                     ) -> None:
    data = b"".join(framed(b) for b in bodies) + tail
    splitter = SequenceSplitter(1 << 16)
    pos = 0
    for cut in cuts:
        items = survives(EnvelopeError, splitter.feed, data[pos:pos + cut])
        if items is None:
            return
        assert splitter.pending <= 7 + (1 << 16)  # never more than one item held
        pos += cut
    survives(EnvelopeError, splitter.feed, data[pos:])


def _uploads(method: str, path: str, headers: dict[str, str]) -> bool:
    return True


@FUZZ
@given(st.one_of(blobs(), st.lists(st.one_of(st.integers(-1, 70000), st.none(),
                                             st.binary(max_size=32), st.text(max_size=4)),
                                   max_size=600).map(dump)))
def test_multipart_core(body: bytes) -> None:
    survives(MultipartError, decode_multipart, body)


@FUZZ
@given(texts(), texts(), st.one_of(st.none(), texts()), st.one_of(st.none(), texts()))
def test_answer_headers_media_types_and_targets(parts: str, status: str,
                                                observe: str | None,
                                                ctype: str | None) -> None:
    survives(HttpRefusal, parse_parts, parts, 256)
    survives(HttpRefusal, response_from_answer, status, observe, ctype, b"x", b"t", None)
    survives(MappingError, content_format, parts)
    survives(MappingError, accepted_format, status)
    survives(HttpRefusal, split_target, "/" + parts)


@FUZZ
@given(st.lists(blobs(), min_size=1, max_size=4), st.booleans(), st.booleans())
def test_server_core_on_arbitrary_bytes(chunks: list[bytes], preface: bool, uploads: bool
                                        ) -> None:
    # uploads: every request an upload, its body through the answer-stream splitter.
    core = ServerCore(Http2Limits(), 0.0, _uploads if uploads else None)
    if preface:
        chunks[0] = PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + chunks[0]
    for chunk in chunks:
        events: Any = survives((), core.receive, chunk, 0.0)
        assert events is not None
        for event in events:
            if isinstance(event, UploadItems):
                for item in event.items:
                    survives(EnvelopeError, decode_answers, item)
        core.data_to_send()
    assert core.held <= Http2Limits().connection_body_budget + (1 << 20)
