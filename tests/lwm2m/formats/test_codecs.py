"""Known answers from the LwM2M TS examples, independent cross-checks and bad input per decoder."""

from __future__ import annotations

import datetime as dt
import json

import cbor2
import pytest

from aiolwm2m.lwm2m import (
    CodecError,
    ContentFormat,
    InvalidPayload,
    InvalidValue,
    LwM2MObject,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    PathNotAllowed,
    ResourceInstance,
    ResourceType,
    SingleResource,
    TimestampedNodes,
    UnsupportedFormat,
    decode_composite,
    decode_node,
    decode_paths,
    decode_timestamped,
    encode_composite,
    encode_node,
    encode_paths,
)
from aiolwm2m.lwm2m.formats import encode_timestamped

CF = ContentFormat
T = ResourceType
P = LwM2MPath.parse

# TS example (LwM2M 1.0 TS 6.4.3.1 / 1.1 TS 7.4.3): Device object instance 0 as resource TLVs,
# and the same wrapped in one object instance TLV.
TS_DEVICE_TLV = bytes.fromhex(
    "C800144F70656E204D6F62696C6520416C6C69616E6365C801164C69676874776569676874204D324D20436C69656E74"
    "C80209333435303030313233C303312E30860641000141010588070842000ED842011388870841007D42010384C10964"
    "C10A0F830B410000C40D5182428FC60E2B30323A3030C11055"
)
TS_DEVICE_TLV_WRAPPED = bytes.fromhex("080079") + TS_DEVICE_TLV

TS_DEVICE = ObjectInstance.from_resources(
    0,
    [
        SingleResource(0, T.STRING, "Open Mobile Alliance"),
        SingleResource(1, T.STRING, "Lightweight M2M Client"),
        SingleResource(2, T.STRING, "345000123"),
        SingleResource(3, T.STRING, "1.0"),
        MultipleResource(6, T.INTEGER, {0: 1, 1: 5}),
        MultipleResource(7, T.INTEGER, {0: 3800, 1: 5000}),
        MultipleResource(8, T.INTEGER, {0: 125, 1: 900}),
        SingleResource(9, T.INTEGER, 100),
        SingleResource(10, T.INTEGER, 15),
        MultipleResource(11, T.INTEGER, {0: 0}),
        SingleResource(13, T.TIME, 1367491215),
        SingleResource(14, T.STRING, "+02:00"),
        SingleResource(16, T.STRING, "U"),
    ],
)
NODE_FORMATS = [
    CF.TLV,
    CF.OLD_TLV,
    CF.SENML_JSON,
    CF.SENML_CBOR,
    CF.LWM2M_JSON,
    CF.OLD_JSON,
    CF.LWM2M_CBOR,
]


def test_ts_tlv_example_decodes_and_reencodes(model: ModelRegistry) -> None:
    assert decode_node(CF.TLV, TS_DEVICE_TLV, P("/3/0"), model) == TS_DEVICE
    assert decode_node(CF.TLV, TS_DEVICE_TLV_WRAPPED, P("/3/0"), model) == TS_DEVICE
    assert encode_node(CF.TLV, P("/3/0"), TS_DEVICE) == TS_DEVICE_TLV
    assert (
        encode_node(CF.TLV, P("/3"), LwM2MObject.from_instances(3, [TS_DEVICE]))
        == TS_DEVICE_TLV_WRAPPED
    )


def test_ts_tlv_single_and_multiple_resource(model: ModelRegistry) -> None:
    # TS examples: Read /3/0/0 as a resource TLV and /3/0/6 as a multiple resource TLV.
    assert (
        encode_node(CF.TLV, P("/3/0/0"), TS_DEVICE.resources[0]).hex().upper().startswith("C80014")
    )
    assert encode_node(
        CF.TLV, P("/3/0/6"), TS_DEVICE.resources[6]
    ).hex().upper() == "86064100014101 05".replace(" ", "")
    assert (
        decode_node(CF.TLV, bytes.fromhex("4100014101 05".replace(" ", "")), P("/3/0/6"), model)
        == TS_DEVICE.resources[6]
    )
    assert decode_node(CF.TLV, bytes.fromhex("410105"), P("/3/0/6/1"), model) == ResourceInstance(
        1, T.INTEGER, 5
    )


@pytest.mark.parametrize("fmt", NODE_FORMATS)
def test_every_structured_format_round_trips_the_ts_device(fmt: int, model: ModelRegistry) -> None:
    for path, node in (
        (P("/3/0"), TS_DEVICE),
        (P("/3"), LwM2MObject.from_instances(3, [TS_DEVICE])),
        (P("/3/0/7"), TS_DEVICE.resources[7]),
        (P("/3/0/0"), TS_DEVICE.resources[0]),
        (P("/3/0/7/1"), ResourceInstance(1, T.INTEGER, 5000)),
    ):
        assert decode_node(fmt, encode_node(fmt, path, node, model), path, model) == node


def test_senml_json_output_checked_by_json_module() -> None:
    payload = encode_node(CF.SENML_JSON, P("/3/0"), TS_DEVICE)
    records = json.loads(payload)
    assert records[0] == {"bn": "/3/0/", "n": "0", "vs": "Open Mobile Alliance"}
    assert {"n": "6/1", "v": 5} in records and {"n": "13", "v": 1367491215} in records
    assert all("bn" not in r for r in records[1:])
    assert type(records[4]["v"]) is int
    single = json.loads(encode_node(CF.SENML_JSON, P("/3/0/0"), TS_DEVICE.resources[0]))
    assert single == [{"n": "/3/0/0", "vs": "Open Mobile Alliance"}]
    opaque = json.loads(
        encode_node(CF.SENML_JSON, P("/5/0/0"), SingleResource(0, T.OPAQUE, b"\xfb\xff"))
    )
    assert opaque == [{"n": "/5/0/0", "vd": "-_8"}]
    flags = json.loads(encode_node(CF.SENML_JSON, P("/1/0/6"), SingleResource(6, T.BOOLEAN, True)))
    assert flags == [{"n": "/1/0/6", "vb": True}]


def test_senml_cbor_output_checked_by_cbor2() -> None:
    records = cbor2.loads(encode_node(CF.SENML_CBOR, P("/3/0"), TS_DEVICE))
    assert records[0] == {-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"}
    assert {0: "7/0", 2: 3800} in records
    node = SingleResource(0, T.OPAQUE, b"\x00\x01")
    assert cbor2.loads(encode_node(CF.SENML_CBOR, P("/5/0/0"), node)) == [
        {0: "/5/0/0", 8: b"\x00\x01"}
    ]
    link = MultipleResource(22, T.OBJLNK, {0: ObjectLink(33606, 0)})
    assert cbor2.loads(encode_node(CF.SENML_CBOR, P("/3/0/22"), link)) == [
        {0: "/3/0/22/0", "vlo": "33606:0"}
    ]
    # Floats take their shortest exact width: 1.5 fits a half-precision float (3 bytes + header).
    half = encode_node(CF.SENML_CBOR, P("/3303/0/5700"), SingleResource(5700, T.FLOAT, 1.5))
    assert half.endswith(bytes.fromhex("02f93e00")) and cbor2.loads(half)[0][2] == 1.5


def test_lwm2m_cbor_output_checked_by_cbor2() -> None:
    document = cbor2.loads(encode_node(CF.LWM2M_CBOR, P("/3/0"), TS_DEVICE))
    assert document[(3, 0)][0] == "Open Mobile Alliance"
    assert document[(3, 0)][6] == {0: 1, 1: 5}
    assert document[(3, 0)][13] == 1367491215
    composite = {
        P("/3/0/0"): TS_DEVICE.resources[0],
        P("/3/0/9"): TS_DEVICE.resources[9],
        P("/1/0/1"): SingleResource(1, T.INTEGER, 60),
    }
    payload = encode_composite(CF.LWM2M_CBOR, composite)
    assert cbor2.loads(payload) == {(3, 0): {0: "Open Mobile Alliance", 9: 100}, (1, 0, 1): 60}
    assert decode_composite(CF.LWM2M_CBOR, payload) == composite


def test_lwm2m_cbor_accepts_indefinite_maps_and_tagged_time(model: ModelRegistry) -> None:
    payload = bytes.fromhex("bf820300bf0d c11a5182428f ff ff".replace(" ", ""))
    node = decode_node(CF.LWM2M_CBOR, payload, P("/3/0"), model)
    assert node == ObjectInstance.from_resources(0, [SingleResource(13, T.TIME, 1367491215)])


def test_single_value_formats(model: ModelRegistry) -> None:
    assert encode_node(CF.TEXT, P("/3/0/9"), TS_DEVICE.resources[9]) == b"100"
    assert decode_node(CF.TEXT, b"100", P("/3/0/9"), model) == TS_DEVICE.resources[9]
    assert decode_node(CF.TEXT, b"x", P("/9999/0/0")) == SingleResource(0, T.STRING, "x")
    blob = SingleResource(0, T.OPAQUE, b"\x00\xff")
    assert encode_node(CF.OPAQUE, P("/5/0/0"), blob) == b"\x00\xff"
    assert decode_node(CF.OPAQUE, b"\x00\xff", P("/5/0/0"), model) == blob
    time_payload = encode_node(CF.CBOR, P("/3/0/13"), TS_DEVICE.resources[13])
    assert cbor2.loads(time_payload) == dt.datetime(2013, 5, 2, 10, 40, 15, tzinfo=dt.UTC)
    assert decode_node(CF.CBOR, time_payload, P("/3/0/13"), model) == TS_DEVICE.resources[13]
    assert (
        decode_node(CF.CBOR, cbor2.dumps(1367491215), P("/3/0/13"), model)
        == TS_DEVICE.resources[13]
    )
    assert decode_node(CF.CBOR, cbor2.dumps("33606:0"), P("/3/0/22/0"), model) == ResourceInstance(
        0, T.OBJLNK, ObjectLink(33606, 0)
    )


def test_timestamped_send_with_history(model: ModelRegistry) -> None:
    groups = [
        TimestampedNodes(1700000000, {P("/3303/0/5700"): SingleResource(5700, T.FLOAT, 21.5)}),
        TimestampedNodes(1700000010, {P("/3303/0/5700"): SingleResource(5700, T.FLOAT, 22.0)}),
        TimestampedNodes(None, {P("/3/0/9"): SingleResource(9, T.INTEGER, 99)}),
    ]
    for fmt in (CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON):
        payload = encode_timestamped(fmt, groups)
        assert decode_timestamped(fmt, payload, LwM2MPath(), model) == groups
    records = json.loads(encode_timestamped(CF.SENML_JSON, groups))
    assert [r.get("bt") for r in records] == [1700000000, 1700000010, 0]
    history = decode_timestamped(
        CF.SENML_JSON, encode_timestamped(CF.SENML_JSON, groups[:2]), P("/3303/0/5700"), model
    )
    assert [g.timestamp for g in history] == [1700000000, 1700000010]


def test_relative_senml_times_and_path_lists() -> None:
    payload = b'[{"bn":"/3303/0/5700","bt":-10,"v":1.5},{"t":5,"v":2.5}]'
    groups = decode_timestamped(CF.SENML_JSON, payload, P("/3303/0/5700"))
    assert [g.timestamp for g in groups] == [-10, -5] and all(g.is_relative for g in groups)
    paths = [P("/3/0/0"), P("/3/0/9"), P("/1"), LwM2MPath()]
    assert (
        encode_paths(CF.SENML_JSON, paths)
        == b'[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1"},{"n":"/"}]'
    )
    for fmt in (CF.SENML_JSON, CF.SENML_CBOR):
        assert decode_paths(fmt, encode_paths(fmt, paths)) == paths


def test_composite_grouping_by_requested_paths(model: ModelRegistry) -> None:
    payload = encode_node(CF.SENML_CBOR, P("/3/0"), TS_DEVICE)
    grouped = decode_composite(CF.SENML_CBOR, payload, [P("/3/0/7"), P("/3/0")], model)
    assert grouped[P("/3/0/7")] == TS_DEVICE.resources[7]
    assert 7 not in grouped[P("/3/0")].resources  # type: ignore[union-attr]
    flat = decode_composite(CF.SENML_CBOR, payload, None, model)
    assert flat[P("/3/0/7/1")] == ResourceInstance(1, T.INTEGER, 5000)
    with pytest.raises(PathNotAllowed, match="was not requested"):
        decode_composite(CF.SENML_CBOR, payload, [P("/3/0/0")], model)


# --- bad input: exact class and a message that names the problem --------------------------------
@pytest.mark.parametrize(
    ("fmt", "payload", "path", "error", "message"),
    [
        (CF.TLV, b"\xc8\x00", "/3/0", InvalidPayload, "truncated TLV header"),
        (CF.TLV, b"\xc8\x00\x14abc", "/3/0", InvalidPayload, "runs past the end"),
        (CF.TLV, b"\xc1\x09\x01\x02", "/3/0", InvalidPayload, "byte offset 3"),
        (CF.TLV, b"\xc3\x09\x00\x00\x01", "/3/0", InvalidValue, "1, 2, 4 or 8 bytes"),
        (CF.TLV, b"\xc1\x07\x01", "/3/0", InvalidValue, "multiple-instance"),
        (
            CF.TLV,
            b"\x41\x00\x01",
            "/3/0",
            InvalidPayload,
            "resource instance TLV cannot stand here",
        ),
        (CF.TLV, b"\xc1\x01\x01", "/3/0/0", PathNotAllowed, "holds resource 1"),
        (CF.TLV, b"\xc1\x00\xff", "/3/0/0", InvalidValue, "not UTF-8"),
        (CF.TLV, b"\x08\x01\x00", "/3/0", PathNotAllowed, "holds instance 1"),
        (CF.SENML_JSON, b"[{", "/3/0", InvalidPayload, "malformed JSON"),
        (CF.SENML_JSON, b'{"n":"/3/0/0"}', "/3/0", InvalidPayload, "array of records"),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/0","vs":"a","v":1}]',
            "/3/0",
            InvalidPayload,
            "conflicting values",
        ),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/0","x":1}]',
            "/3/0",
            InvalidPayload,
            "unknown or unsupported label 'x'",
        ),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/0","vs":"a","foo_":1}]',
            "/3/0",
            InvalidPayload,
            "must-understand",
        ),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/0","vs":"a"},{"n":"/3/0/0","vs":"b"}]',
            "/3/0",
            InvalidPayload,
            "appears twice",
        ),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/9","vs":"a"}]',
            "/3/0",
            InvalidValue,
            "cannot hold a Integer",
        ),
        (CF.SENML_JSON, b'[{"n":"/3/0/9","v":1.5}]', "/3/0", InvalidValue, "record 0"),
        (
            CF.SENML_JSON,
            b'[{"n":"/4/0/0","v":1}]',
            "/3/0",
            PathNotAllowed,
            "outside the request path",
        ),
        (CF.SENML_JSON, b'[{"n":"/3/0/9","v":NaN}]', "/3/0", InvalidPayload, "NaN"),
        (CF.SENML_JSON, b'[{"n":"/3/0/x","v":1}]', "/3/0", InvalidPayload, "not a decimal id"),
        (CF.SENML_JSON, b'[{"n":"/3/0/9"}]', "/3/0", InvalidPayload, "no value"),
        (
            CF.SENML_JSON,
            b'[{"n":"/3/0/9","vb":1}]',
            "/3/0",
            InvalidPayload,
            "'vb' has the wrong type",
        ),
        (CF.SENML_JSON, b'[{"n":"/5/0/0","vd":"!!"}]', "/5/0", InvalidPayload, "not base64url"),
        (CF.SENML_JSON, b'[{"n":"/3/0/7","v":1}]', "/3/0", InvalidValue, "multiple-instance"),
        (CF.SENML_JSON, b'[{"n":"/3/0","v":1}]', "/3/0", InvalidPayload, "must name a resource"),
        (CF.SENML_JSON, b"\xff", "/3/0", InvalidPayload, "not UTF-8"),
        (CF.SENML_CBOR, b"\x81\xa1", "/3/0", InvalidPayload, "malformed CBOR"),
        (CF.SENML_CBOR, b"\x80\x00", "/3/0", InvalidPayload, "1 bytes after the CBOR item"),
        (
            CF.SENML_CBOR,
            cbor2.dumps([{0: "/5/0/0", 8: "text"}]),
            "/5/0",
            InvalidPayload,
            "'vd' has the wrong type",
        ),
        (CF.SENML_CBOR, cbor2.dumps([{0: "/3/0/0", -5: 1}]), "/3/0", InvalidPayload, "label '-5'"),
        (CF.LWM2M_JSON, b'{"bn":"/3/0/","e":[{"n":"0"}]}', "/3/0", InvalidPayload, "no value"),
        (CF.LWM2M_JSON, b'{"bn":"/3/0/","x":1,"e":[]}', "/3/0", InvalidPayload, "unknown member"),
        (
            CF.LWM2M_JSON,
            b'{"e":[{"n":"/3/0/0","sv":1}]}',
            "/3/0",
            InvalidPayload,
            "wrong JSON type",
        ),
        (CF.LWM2M_CBOR, cbor2.dumps([1]), "/3/0", InvalidPayload, "is a map"),
        (CF.LWM2M_CBOR, cbor2.dumps({"x": 1}), "/3/0", InvalidPayload, "neither an id"),
        (CF.LWM2M_CBOR, cbor2.dumps({(3, 0, 0, 0, 0): 1}), "/3/0", InvalidPayload, "deeper than 4"),
        (
            CF.LWM2M_CBOR,
            cbor2.dumps({(3, 0): 1}),
            "/3/0",
            InvalidPayload,
            "must stand at a resource",
        ),
        (CF.LWM2M_CBOR, cbor2.dumps({(3, 0, 9): [1]}), "/3/0", InvalidValue, "not an LwM2M value"),
        (CF.TEXT, b"abc", "/3/0/9", InvalidValue, "not a decimal integer"),
        (CF.TEXT, b"1", "/3/0", UnsupportedFormat, "whole object instance"),
        (CF.TEXT, b"1", "/3/0/7", UnsupportedFormat, "multiple-instance"),
        (CF.OPAQUE, b"1", "/3/0/9", UnsupportedFormat, "Opaque values only"),
        (CF.CBOR, b"", "/3/0/9", InvalidPayload, "empty payload"),
        (CF.CBOR, cbor2.dumps("x"), "/3/0/9", InvalidValue, "cannot hold a Integer"),
        (9999, b"", "/3/0", UnsupportedFormat, "9999 is not supported"),
    ],
)
def test_bad_input(
    fmt: int, payload: bytes, path: str, error: type[CodecError], message: str, model: ModelRegistry
) -> None:
    with pytest.raises(error, match=message) as info:
        decode_node(fmt, payload, P(path), model)
    assert type(info.value) is error
    assert info.value.fmt == fmt


def test_error_codes_and_messages() -> None:
    with pytest.raises(UnsupportedFormat) as info:
        encode_composite(CF.TLV, {})
    assert info.value.coap_code == "4.15" and info.value.accept_coap_code == "4.06"
    with pytest.raises(PathNotAllowed, match="does not match path /3/1"):
        encode_node(CF.SENML_JSON, P("/3/1"), TS_DEVICE)
    with pytest.raises(InvalidValue, match="not representable in JSON"):
        encode_node(CF.SENML_JSON, P("/3303/0/5700"), SingleResource(5700, T.FLOAT, float("nan")))
    with pytest.raises(UnsupportedFormat):
        encode_node(CF.TEXT, P("/3/0"), TS_DEVICE)


@pytest.mark.parametrize("fmt, payload", [
    (CF.SENML_JSON, rb'[{"bn":"/3/0/","n":"0","vs":"a\ud800b"}]'),
    (CF.SENML_JSON, rb'[{"bn":"/3/0/","n":"0","vs":"\udc00"}]'),
    (CF.LWM2M_JSON, rb'{"bn":"/3/0/","e":[{"n":"0","sv":"a\ud800b"}]}'),
])
def test_json_text_escaping_a_lone_surrogate_is_malformed(fmt: int, payload: bytes,
                                                          model: ModelRegistry) -> None:
    # Valid UTF-8 JSON, but the string is no Unicode text: it could not be stored or
    # answered again (a SQLite write of it failed every device's values of that batch).
    with pytest.raises(InvalidPayload, match="lone surrogate"):
        decode_node(fmt, payload, P("/3/0"), model)


@pytest.mark.parametrize("fmt, payload", [
    (CF.SENML_JSON, rb'[{"bn":"/3/0/","n":"0","vs":"\ud83d\ude00 \u00e9"}]'),
    (CF.LWM2M_JSON, rb'{"bn":"/3/0/","e":[{"n":"0","sv":"\ud83d\ude00 \u00e9"}]}'),
])
def test_json_text_escaping_a_surrogate_pair_is_text(fmt: int, payload: bytes,
                                                     model: ModelRegistry) -> None:
    node = decode_node(fmt, payload, P("/3/0"), model)
    assert isinstance(node, ObjectInstance)
    assert node.resources[0].value == "\U0001f600 \u00e9"  # type: ignore[union-attr]
