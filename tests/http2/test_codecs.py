"""The sans-IO pieces of the HTTP/2 binding: the status and media-type tables, the downlink
envelope, multipart-core, message identities and the duplicate cache."""

from __future__ import annotations

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.http2 import identity as ids
from aiolwm2m.http2.dedup import ReplyCache, request_key
from aiolwm2m.http2.envelope import (
    DownlinkRequest,
    EnvelopeError,
    EnvelopeReader,
    decode_item,
    encode_envelope,
)
from aiolwm2m.http2.mapping import (
    MappingError,
    accepted_format,
    coap_code,
    content_format,
    http_status,
    media_type,
)
from aiolwm2m.http2.messages import (
    HttpReply,
    HttpRequest,
    format_parts,
    parse_parts,
    split_target,
)
from aiolwm2m.http2.multipart import MultipartError, decode_multipart, encode_multipart
from aiolwm2m.lwm2m.formats.cbor_support import dump

RESPONSE_CODES = [c for c in Code if 2 <= (c >> 5) <= 5 and c != Code.CONTINUE]


def test_status_table_is_one_to_one() -> None:
    statuses = [http_status(c) for c in RESPONSE_CODES]
    assert len(set(statuses)) == len(statuses)
    for code in RESPONSE_CODES:
        assert coap_code(http_status(code)) == code
    assert http_status(Code.CONTENT) == 200 and http_status(Code.CREATED) == 201
    assert http_status(Code.CHANGED) == 204 and http_status(Code.DELETED) == 205
    assert http_status(Code.NOT_FOUND) == 404 and http_status(Code.SERVICE_UNAVAILABLE) == 503
    with pytest.raises(MappingError):
        coap_code(418)
    with pytest.raises(MappingError):
        http_status(Code.CONTINUE)


@pytest.mark.parametrize("fmt", [0, 40, 42, 60, 62, 110, 112, 11542, 11543, 11544, 1542,
                                 1543, 65535])
def test_media_types_round_trip(fmt: int) -> None:
    assert content_format(media_type(fmt)) == fmt


def test_media_type_parsing() -> None:
    assert content_format("text/plain") == 0
    assert content_format("Text/Plain; charset=UTF-8") == 0
    assert content_format("application/senml+json; foo=bar") == 110
    assert accepted_format("*/*") == -1
    assert accepted_format("application/cbor, text/plain") == 60
    for bad in ("text/plain;charset=latin-1", "image/png", "application/x.coap-ct;ct=70000",
                "application/x.coap-ct", "a" * 200):
        with pytest.raises(MappingError):
            content_format(bad)


def test_identities() -> None:
    made = {ids.new_identity() for _ in range(1000)}
    assert len(made) == 1000 and all(ids.valid_identity(i) and len(i) == 16 for i in made)
    for bad in ("", "a" * 65, "has space", "é", "a/b"):
        assert not ids.valid_identity(bad)
    assert ids.identity_of(ids.token_of("abc_-9")) == "abc_-9"
    assert ids.valid_identity(ids.identity_of(b"\x00\xff"))


def test_envelope_single_and_batch_fed_byte_by_byte() -> None:
    one = DownlinkRequest("id-1", Code.GET, "/3/0/1", accept=110)
    two = DownlinkRequest("id-2", Code.PUT, "/3/0/14", ("pmin=1",), 0, None, None, b"+01")
    three = DownlinkRequest("id-3", Code.GET, "/3303/0/5700", observe=0)
    data = encode_envelope([one]) + encode_envelope([two, three]) + encode_envelope(
        [DownlinkRequest("id-4", Code.POST, "/x", payload=b"p" * 70000)])
    reader = EnvelopeReader()
    got = []
    for i in range(len(data)):
        got += reader.feed(data[i:i + 1])
    assert [len(e) for e in got] == [1, 2, 1]
    assert got[0][0] == one and got[1] == [two, three]
    assert got[2][0].payload == b"p" * 70000 and reader.pending == 0


@pytest.mark.parametrize("body, words", [
    (dump({1: 1, 2: "/"}), "identity"),
    (dump({0: "x y", 1: 1, 2: "/"}), "identity"),
    (dump({0: "a", 1: 9, 2: "/"}), "method"),
    (dump({0: "a", 1: 1, 2: "3/0"}), "path"),
    (dump({0: "a", 1: 1, 2: "/", 3: "q"}), "query"),
    (dump({0: "a", 1: 1, 2: "/", 4: -1}), "content format"),
    (dump({0: "a", 1: 1, 2: "/", 6: 1 << 30}), "observe"),
    (dump({0: "a", 1: 1, 2: "/", 7: "text"}), "payload"),
    (dump([]), "batch"),
    (dump([{0: "a", 1: 1, 2: "/"}] * 65), "batch"),
    (dump([1]), "maps"),
    (dump("x"), "neither"),
    (b"\xff", "not CBOR"),
])
def test_malformed_envelopes_are_named(body: bytes, words: str) -> None:
    with pytest.raises(EnvelopeError, match=words):
        decode_item(body)


def test_envelope_framing_errors_and_unknown_keys() -> None:
    with pytest.raises(EnvelopeError, match="tag 24"):
        EnvelopeReader().feed(b"\xa1\x00\x00")
    with pytest.raises(EnvelopeError, match="byte string"):
        EnvelopeReader().feed(b"\xd8\x18\x61a")
    with pytest.raises(EnvelopeError, match="over 100 bytes"):
        EnvelopeReader(100).feed(b"\xd8\x18\x59\x10\x00")
    got = decode_item(dump({0: "a", 1: 1, 2: "/1", 42: "later"}))
    assert got[0].extra == {42: "later"}


def test_multipart_core() -> None:
    parts = [(110, b'[{"v":1}]'), (None, None), (0, b"text")]
    body = encode_multipart(parts)
    assert decode_multipart(body) == parts
    with pytest.raises(ValueError):
        encode_multipart([(None, b"x")])
    for bad, words in ((dump([1]), "even"), (dump(["a", b""]), "content format"),
                       (dump([0, "x"]), "bytes or null"), (dump({}), "even"),
                       (b"\x82", "not CBOR")):
        with pytest.raises(MultipartError, match=words):
            decode_multipart(bad)


def test_parts_header() -> None:
    text = format_parts([("aa", 205, None), ("bb", 200, 7)])
    assert parse_parts(text, 10) == [("aa", "205", None), ("bb", "200", "7")]
    with pytest.raises(Exception, match="identity"):
        parse_parts("not valid;s=200", 10)
    with pytest.raises(Exception, match="s=<status>"):
        parse_parts("aa", 10)
    with pytest.raises(Exception, match="more than 1 parts"):
        parse_parts("aa;s=200, bb;s=200", 1)


def test_targets() -> None:
    assert split_target("/rd/x%2Fy?ep=a%20b&lt=5&Q") == (("rd", "x/y"), ["ep=a b", "lt=5", "Q"])
    assert split_target("/") == ((), [])
    with pytest.raises(Exception, match="segments"):
        split_target("/a" * 20)


def test_reply_cache_answers_retries_once_known() -> None:
    cache = ReplyCache(0.0)
    req = HttpRequest(1, "POST", "/dp", {"content-type": "application/senml+json"}, b"[1]")
    key = request_key(req, None, "m1")
    first: list[HttpReply] = []
    later: list[HttpReply] = []
    assert cache.begin(key, 0.0, first.append)
    assert not cache.begin(key, 0.1, later.append)  # a retry while the first runs
    assert later == []
    cache.finish(key, HttpReply(204), 0.2)
    assert [r.status for r in later] == [204] and first == []
    assert not cache.begin(key, 0.3, later.append)
    assert [r.status for r in later] == [204, 204]
    # Another principal, or another body, with the same identity is another message.
    assert cache.begin(request_key(req, "psk:other", "m1"), 0.4, first.append)
    req2 = HttpRequest(1, "POST", "/dp", req.headers, b"[2]")
    assert cache.begin(request_key(req2, None, "m1"), 0.4, first.append)
