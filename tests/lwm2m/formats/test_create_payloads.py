"""Create payloads with and without the instance level (LwM2M 1.1: the client may pick the id)."""

from __future__ import annotations

import json

import cbor2
import pytest

from aiolwm2m.lwm2m import (
    ContentFormat,
    InvalidPayload,
    LwM2MObject,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    ObjectInstance,
    ResourceType,
    SingleResource,
    UnsupportedFormat,
)
from aiolwm2m.lwm2m.formats import decode_create, encode_create

CF = ContentFormat
T = ResourceType
P = LwM2MPath.parse

SENSOR = ObjectInstance.from_resources(7, [SingleResource(5700, T.FLOAT, 21.5),
                                           SingleResource(5701, T.STRING, "Cel")])
FREE = 4  # the "lowest free id" the client passes in


@pytest.mark.parametrize("fmt", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR])
def test_round_trip_without_instance_id(fmt: int, model: ModelRegistry) -> None:
    payload = encode_create(fmt, P("/3303"), SENSOR, assign_id=True)
    decoded = decode_create(fmt, payload, P("/3303"), model, FREE)
    assert decoded == LwM2MObject(3303, {FREE: SENSOR._replace(id=FREE)})


@pytest.mark.parametrize("fmt", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR,
                                 CF.LWM2M_JSON])
def test_round_trip_with_instance_id(fmt: int, model: ModelRegistry) -> None:
    payload = encode_create(fmt, P("/3303"), SENSOR)
    assert decode_create(fmt, payload, P("/3303"), model, FREE) == LwM2MObject(3303, {7: SENSOR})


def test_wire_forms_without_instance_id(model: ModelRegistry) -> None:
    # TLV: the resource TLVs at the top level, no object instance TLV around them.
    tlv = encode_create(CF.TLV, P("/3303"), SENSOR, assign_id=True)
    assert tlv == bytes.fromhex("e4164441ac0000" "e31645") + b"Cel"
    # SenML: names relative to the object, without an instance segment.
    records = json.loads(encode_create(CF.SENML_JSON, P("/3303"), SENSOR, assign_id=True))
    assert records == [{"bn": "/3303/", "n": "5700", "v": 21.5}, {"n": "5701", "vs": "Cel"}]
    # LwM2M CBOR: {3303: {5700: ..., 5701: ...}}.
    document = cbor2.loads(encode_create(CF.LWM2M_CBOR, P("/3303"), SENSOR, assign_id=True))
    assert document == {3303: {5700: 21.5, 5701: "Cel"}}
    # An instance without resources is an empty payload, which makes an empty instance.
    empty = ObjectInstance(0, {})
    assert encode_create(CF.TLV, P("/3303"), empty, assign_id=True) == b""
    assert decode_create(CF.TLV, b"", P("/3303"), model, FREE) == LwM2MObject(
        3303, {FREE: ObjectInstance(FREE, {})})


def test_third_party_shapes(model: ModelRegistry) -> None:
    # TLV: a resource and a multiple resource at the top level (resource 9 = 87, 7 = {0: 1}).
    tlv = bytes.fromhex("c10957" "8307410001")
    decoded = decode_create(CF.TLV, tlv, P("/3"), model, 1)
    assert isinstance(decoded, LwM2MObject) and set(decoded.instances) == {1}
    assert decoded.instances[1].resources[9] == SingleResource(9, T.INTEGER, 87)
    assert decoded.instances[1].resources[7] == MultipleResource(7, T.INTEGER, {0: 1})
    # SenML: a two-level name settles it, no instance.
    pack = [{"n": "/3303/5700", "v": 3.5}]
    decoded = decode_create(CF.SENML_JSON, json.dumps(pack).encode(), P("/3303"), model, 2)
    assert decoded == LwM2MObject(3303, {2: ObjectInstance(2, {
        5700: SingleResource(5700, T.FLOAT, 3.5)})})
    # Three levels read both ways (/3/7/9: instance 7's resource 9, or instance 9 of the
    # multiple resource 7): the TS's instance/resource reading wins...
    pack = [{"n": "/3/7/9", "v": 1}]
    decoded = decode_create(CF.SENML_JSON, json.dumps(pack).encode(), P("/3"), model, 2)
    assert isinstance(decoded, LwM2MObject) and set(decoded.instances) == {7}
    # ... unless only the other fits the model (Device has no resource 100).
    pack = [{"n": "/3/11/100", "v": 0}, {"n": "/3/11/101", "v": 2}]
    decoded = decode_create(CF.SENML_JSON, json.dumps(pack).encode(), P("/3"), model, 2)
    assert isinstance(decoded, LwM2MObject)
    assert decoded.instances[2].resources[11] == MultipleResource(11, T.INTEGER, {100: 0, 101: 2})
    document = cbor2.dumps({3: {11: {100: 0, 101: 2}}})
    assert decode_create(CF.LWM2M_CBOR, document, P("/3"), model, 2) == decoded


def test_bad_create_payloads(model: ModelRegistry) -> None:
    mixed = bytes.fromhex("080003c10605" "c10605")
    with pytest.raises(InvalidPayload, match="mixed with resource TLVs"):
        decode_create(CF.TLV, mixed, P("/10"), model, 0)
    pack = [{"n": "/3303/5700", "v": 1.0}, {"n": "/3303/0/5701/0", "vs": "x"}]
    with pytest.raises(InvalidPayload, match="with and without an instance id"):
        decode_create(CF.SENML_JSON, json.dumps(pack).encode(), P("/3303"), model, 0)
    with pytest.raises(UnsupportedFormat):
        encode_create(CF.LWM2M_JSON, P("/3303"), SENSOR, assign_id=True)
    # Multiple resources only would read as an instance id in SenML and LwM2M CBOR.
    errors = ObjectInstance(0, {11: MultipleResource(11, T.INTEGER, {0: 1})})
    with pytest.raises(UnsupportedFormat, match="single-instance resource"):
        encode_create(CF.SENML_CBOR, P("/3"), errors, assign_id=True)
    assert encode_create(CF.TLV, P("/3"), errors, assign_id=True) == bytes.fromhex("830b410001")
