"""A resource the model does not define for the object's version decodes leniently.

Object 10 (Cellular Connectivity) has resource 6 in version 1.0 only. A device that announced
1.1 and still sends it used to sink the whole payload (PathNotAllowed); now the value takes the
type its format gives it (Opaque where the format has no types) and the response says which
paths the model could not vouch for.
"""

from __future__ import annotations

import cbor2
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MObject,
    LwM2MPath,
    ModelRegistry,
    ObjectInstance,
    ResourceType,
    SingleResource,
    decode_composite,
    decode_node,
)
from aiolwm2m.lwm2m.coap_mapping import DeviceContext, decode_response
from aiolwm2m.lwm2m.operations import ReadCompositeRequest, ReadRequest, response_to_dict
from aiolwm2m.lwm2m.unknown_resources import unknown_resource_paths

CF = ContentFormat
T = ResourceType
P = LwM2MPath.parse


@pytest.fixture
def model_11() -> ModelRegistry:
    """The model as a device announcing ``</10>;ver=1.1`` sees it."""
    return ModelRegistry.with_core_objects().pinned({10: "1.1"})


# /10/0 with resources 0 (String "apn"), 1 (Integer 30) and 6 (1.0 only, Integer 5).
PAYLOADS = {
    CF.TLV: bytes.fromhex("c3 00 61706e c1 01 1e c1 06 05".replace(" ", "")),
    CF.SENML_JSON: b'[{"bn":"/10/0/","n":"0","vs":"apn"},{"n":"1","v":30},{"n":"6","v":5}]',
    CF.SENML_CBOR: cbor2.dumps([{-2: "/10/0/", 0: "0", 3: "apn"}, {0: "1", 2: 30},
                                {0: "6", 2: 5}]),
    CF.LWM2M_CBOR: cbor2.dumps({(10, 0): {0: "apn", 1: 30, 6: 5}}),
    CF.LWM2M_JSON: b'{"bn":"/10/0/","e":[{"n":"0","sv":"apn"},{"n":"1","v":30},{"n":"6","v":5}]}',
}
# What resource 6 becomes: the format's own type, Opaque for TLV (its raw bytes).
EXPECTED_6 = {
    CF.TLV: SingleResource(6, T.OPAQUE, b"\x05"),
    CF.SENML_JSON: SingleResource(6, T.INTEGER, 5),
    CF.SENML_CBOR: SingleResource(6, T.INTEGER, 5),
    CF.LWM2M_CBOR: SingleResource(6, T.INTEGER, 5),
    CF.LWM2M_JSON: SingleResource(6, T.INTEGER, 5),
}


@pytest.mark.parametrize("fmt", sorted(PAYLOADS))
def test_instance_with_a_resource_of_another_version(fmt: int, model_11: ModelRegistry) -> None:
    # Twice: the second decode goes through the formats' cached fast paths.
    for _ in range(2):
        node = decode_node(fmt, PAYLOADS[fmt], P("/10/0"), model_11)
        assert isinstance(node, ObjectInstance)
        assert node.resources[0] == SingleResource(0, T.STRING, "apn")
        assert node.resources[1] == SingleResource(1, T.INTEGER, 30)
        assert node.resources[6] == EXPECTED_6[fmt]
        assert unknown_resource_paths(P("/10/0"), node, model_11) == (P("/10/0/6"),)


def test_object_level_and_single_value_formats(model_11: ModelRegistry) -> None:
    obj = decode_node(CF.TLV, bytes.fromhex("080003c10605"), P("/10"), model_11)
    assert isinstance(obj, LwM2MObject)
    assert unknown_resource_paths(P("/10"), obj, model_11) == (P("/10/0/6"),)
    assert decode_node(CF.TEXT, b"5", P("/10/0/6"), model_11) == SingleResource(6, T.STRING, "5")
    # Not UTF-8: kept as the bytes they are rather than refused.
    assert decode_node(CF.TEXT, b"\xff", P("/10/0/6"), model_11) == SingleResource(
        6, T.OPAQUE, b"\xff")
    assert decode_node(CF.OPAQUE, b"\x05", P("/10/0/6"), model_11) == SingleResource(
        6, T.OPAQUE, b"\x05")
    assert decode_node(CF.CBOR, b"\x05", P("/10/0/6"), model_11) == SingleResource(
        6, T.INTEGER, 5)
    # Known resources and unknown objects are not reported.
    assert unknown_resource_paths(P("/10/0/1"), SingleResource(1, T.INTEGER, 1), model_11) == ()
    assert unknown_resource_paths(P("/9999/0/1"), SingleResource(1, T.INTEGER, 1), model_11) == ()


def test_read_response_marks_unknown_paths(model_11: ModelRegistry) -> None:
    ctx = DeviceContext(model_11)
    request = Message.request(Code.GET, ["10", "0"])
    reply = request.response(Code.CONTENT, PAYLOADS[CF.SENML_CBOR], CF.SENML_CBOR)
    resp = decode_response(ReadRequest(P("/10/0")), reply, ctx)
    assert resp.success and resp.unknown == (P("/10/0/6"),)  # type: ignore[attr-defined]
    assert response_to_dict(resp)["unknown"] == ["/10/0/6"]
    composite = request.response(Code.CONTENT, cbor2.dumps(
        [{0: "/10/0/1", 2: 30}, {0: "/10/0/6", 2: 5}]), CF.SENML_CBOR)
    op = ReadCompositeRequest((P("/10/0/1"), P("/10/0/6")))
    resp = decode_response(op, composite, ctx)
    assert resp.unknown == (P("/10/0/6"),)  # type: ignore[attr-defined]
    values = decode_composite(CF.SENML_CBOR, composite.payload, None, model_11)
    assert values[P("/10/0/6")] == SingleResource(6, T.INTEGER, 5)
