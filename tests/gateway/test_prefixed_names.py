"""Prefixed paths and prefixed payload names (sans-IO)."""

from __future__ import annotations

import cbor2
import pytest

from aiolwm2m.lwm2m import (
    ContentFormat,
    InvalidPath,
    InvalidPayload,
    LwM2MPath,
    ModelRegistry,
    decode_composite,
    decode_node,
    encode_composite,
    encode_node,
)
from aiolwm2m.lwm2m.coap_mapping import DeviceContext, decode_response, encode_request
from aiolwm2m.lwm2m.formats.prefixed_names import (
    add_prefix,
    join,
    names,
    split_by_prefix,
    strip_prefix,
)
from aiolwm2m.lwm2m.operations import ReadRequest, WriteCompositeRequest
from aiolwm2m.lwm2m.prefixed_path import PrefixedPath, parse_prefixed, prefix_problem

CF = ContentFormat
MODEL = ModelRegistry.with_core_objects()
SENSOR = decode_node(CF.SENML_JSON, b'[{"bn":"/3303/0/","n":"5700","v":21.5},'
                     b'{"n":"5701","vs":"Cel"}]', LwM2MPath(3303, 0), MODEL)


@pytest.mark.parametrize("text, expected", [
    ("/dev1/3303/0/5700", PrefixedPath("dev1", LwM2MPath(3303, 0, 5700))),
    ("/3303/0", PrefixedPath(None, LwM2MPath(3303, 0))),
    ("/dev1", PrefixedPath("dev1", LwM2MPath())),
    ("/", PrefixedPath(None, LwM2MPath())),
    ("/n-1.2_x~/3", PrefixedPath("n-1.2_x~", LwM2MPath(3))),
])
def test_parse_prefixed(text: str, expected: PrefixedPath) -> None:
    assert parse_prefixed(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text, reason", [
    ("/dev 1/3", "characters other than"),
    ("/" + "x" * 65 + "/3", "at most 64"),
    ("/../3", "'.' and '..'"),
    ("/dev1/", "empty segment"),
    ("/dev1/x", "not a decimal id"),
    ("dev1/3", "must start with '/'"),
])
def test_parse_prefixed_refuses(text: str, reason: str) -> None:
    with pytest.raises(InvalidPath, match=reason):
        parse_prefixed(text)


def test_a_prefix_of_digits_clashes_with_an_object_id() -> None:
    assert "clashes with an object id" in (prefix_problem("3303") or "")
    assert prefix_problem("٣٣") is not None  # non-ASCII digits are no ASCII prefix either
    assert prefix_problem("d3303") is None
    # A path starting with digits is an object path, never a prefix.
    assert parse_prefixed("/3303/0").prefix is None


@pytest.mark.parametrize("fmt", [CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.LWM2M_CBOR])
def test_names_carry_the_prefix_and_lose_it_again(fmt: int) -> None:
    plain = encode_node(fmt, LwM2MPath(3303, 0), SENSOR, MODEL)
    prefixed = add_prefix(fmt, plain, "dev1")
    if fmt == CF.SENML_JSON:
        assert names(fmt, prefixed) == ["/dev1/3303/0/5700", "/dev1/3303/0/5701"]
    if fmt == CF.LWM2M_CBOR:
        assert list(cbor2.loads(prefixed)) == ["dev1"]  # {"dev1": {...}} (Gateway TS)
    assert decode_node(fmt, strip_prefix(fmt, prefixed, "dev1"), LwM2MPath(3303, 0),
                       MODEL) == SENSOR
    # Names of another device are left as they are (and then fail to decode there).
    with pytest.raises(InvalidPayload):
        decode_node(fmt, strip_prefix(fmt, prefixed, "dev2"), LwM2MPath(3303, 0), MODEL)


def test_lwm2m_cbor_prefix_in_an_array_key() -> None:
    # The Gateway TS example: {["d01", 3, 0]: {0: "Company A", 9: 100}}
    payload = cbor2.dumps({("d01", 3, 0): {0: "Company A", 9: 100}})
    stripped = strip_prefix(CF.LWM2M_CBOR, payload, "d01")
    assert cbor2.loads(stripped) == {(3, 0): {0: "Company A", 9: 100}}
    with pytest.raises(InvalidPayload, match="not this device's prefix"):
        strip_prefix(CF.LWM2M_CBOR, payload, "d02")
    with pytest.raises(InvalidPayload, match="a prefix alone"):
        strip_prefix(CF.LWM2M_CBOR, cbor2.dumps({("d01",): 1}), "d01")


def test_split_and_join_keep_base_times() -> None:
    pack = (b'[{"bn":"/a/3303/0/","bt":1700000000,"n":"5700","v":1},'
            b'{"bn":"/3303/0/","n":"5700","v":2},{"bn":"/b/","n":"3303/0/5700","t":5,"v":3}]')
    groups = split_by_prefix(CF.SENML_JSON, pack)
    assert set(groups) == {"a", "b", None}
    # The base time of the first record still applies to the records moved elsewhere.
    b_values = decode_composite(CF.SENML_JSON, groups["b"], None, MODEL)
    assert b_values[LwM2MPath(3303, 0, 5700)].value == 3
    assert b'"bt":1700000000' in groups["b"] and b'"t":5' in groups["b"]
    cbor_pack = cbor2.dumps([{-2: "/a/3/0/", -3: 1700000000, 0: "1", 2: 1},
                             {-2: "/b/3/0/", 0: "2", 2: 2}])
    cbor_groups = split_by_prefix(CF.SENML_CBOR, cbor_pack)
    assert cbor2.loads(cbor_groups["b"]) == [{0: "/3/0/2", -3: 1700000000, 2: 2}]
    joined = join(CF.SENML_CBOR, [add_prefix(CF.SENML_CBOR, cbor_groups["a"], "a"),
                                  add_prefix(CF.SENML_CBOR, cbor_groups["b"], "b")])
    assert names(CF.SENML_CBOR, joined) == ["/a/3/0/1", "/b/3/0/2"]


@pytest.mark.parametrize("payload, reason", [
    (b"\x81\xa1\x00", "truncated"),
    (b"\x9f" * 40 + b"\xff" * 40, "nesting too deep|expected"),
    (b"\x81\xa1\x00\x7f\x61a\xff", "definite-length text"),
    (b"\x81\xa1\x00\x62\xff\xfe", "not UTF-8"),
    (b"\x81\xbb\xff\xff\xff\xff\xff\xff\xff\xff", "beyond the payload|truncated"),
    (b"\x80\x00", "trailing bytes"),
])
def test_bad_cbor_is_refused_precisely(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        strip_prefix(CF.SENML_CBOR, payload, "dev1")


def test_device_context_prefixes_requests_and_strips_answers() -> None:
    base = DeviceContext.for_client(MODEL, "1.1", (CF.SENML_JSON,), "/")
    ctx = DeviceContext(base.model, base.format, base.composite_format, ("dev1",), "/dev1")
    read = encode_request(ReadRequest(LwM2MPath(3303, 0), CF.SENML_JSON), ctx)
    assert read.uri_path == ("dev1", "3303", "0")
    write = encode_request(WriteCompositeRequest.of(
        {LwM2MPath(3303, 0, 5700): SENSOR.resources[5700]}, CF.SENML_JSON), ctx)
    assert names(CF.SENML_JSON, write.payload) == ["/dev1/3303/0/5700"]
    answer = read.response(69, add_prefix(CF.SENML_JSON, encode_composite(
        CF.SENML_JSON, {LwM2MPath(3303, 0): SENSOR}, MODEL), "dev1"), CF.SENML_JSON)
    response = decode_response(ReadRequest(LwM2MPath(3303, 0)), answer, ctx)
    assert response.content == SENSOR  # type: ignore[attr-defined]
