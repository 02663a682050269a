"""Property tests: round trips over generated nodes, and fuzzed bytes per decoder."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiolwm2m.lwm2m import (
    CodecError,
    ContentFormat,
    LwM2MObject,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ResourceInstance,
    ResourceType,
    SingleResource,
    decode_composite,
    decode_node,
    decode_paths,
    encode_composite,
    encode_node,
)
from aiolwm2m.lwm2m.formats import decode_discover, decode_object_list

T = ResourceType
CF = ContentFormat
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALUES = {
    T.STRING: st.text(max_size=20),
    T.INTEGER: st.integers(-(2**63), 2**63 - 1),
    T.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    T.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    T.BOOLEAN: st.booleans(),
    T.OPAQUE: st.binary(max_size=20),
    T.TIME: st.integers(0, 2**33).map(lambda s: dt.datetime.fromtimestamp(s, dt.UTC)),
    T.OBJLNK: st.builds(ObjectLink, st.integers(0, 65535), st.integers(0, 65535)),
    T.CORELNK: st.just("</3/0>"),
}
# Types that keep their type without a model in each family of formats.
SELF_DESCRIBING = [T.STRING, T.INTEGER, T.FLOAT, T.BOOLEAN, T.OPAQUE, T.OBJLNK]


@st.composite
def resources(
    draw: st.DrawFn, rid: int, types: list[ResourceType]
) -> SingleResource | MultipleResource:
    rtype = draw(st.sampled_from(types))
    if draw(st.booleans()):
        return SingleResource(rid, rtype, draw(VALUES[rtype]))
    instances = draw(st.dictionaries(st.integers(0, 65535), VALUES[rtype], min_size=1, max_size=3))
    return MultipleResource(rid, rtype, instances)


@st.composite
def instances(draw: st.DrawFn, types: list[ResourceType]) -> ObjectInstance:
    rids = draw(st.lists(st.integers(0, 65535), min_size=1, max_size=6, unique=True))
    iid = draw(st.integers(0, 65534))
    return ObjectInstance.from_resources(iid, [draw(resources(rid, types)) for rid in rids])


OBJECT_ID = 40000  # not in the shipped model: every type comes from the node or the payload


def _registry_for(instance: ObjectInstance) -> ModelRegistry:
    """A model matching the generated node, so that untyped formats (TLV) can decode it."""
    from aiolwm2m.lwm2m import ObjectModel, Operations, ResourceModel

    resources = {
        rid: ResourceModel(
            rid, f"r{rid}", Operations.RW, isinstance(r, MultipleResource), False, r.type
        )
        for rid, r in instance.resources.items()
    }
    return ModelRegistry([ObjectModel(OBJECT_ID, "generated", multiple=True, resources=resources)])


@SETTINGS
@given(
    instances(list(VALUES)),
    st.sampled_from([CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.LWM2M_CBOR]),
)
def test_round_trip_with_model(instance: ObjectInstance, fmt: int) -> None:
    model = _registry_for(instance)
    path = LwM2MPath(OBJECT_ID, instance.id)
    assert decode_node(fmt, encode_node(fmt, path, instance, model), path, model) == instance
    obj = LwM2MObject.from_instances(OBJECT_ID, [instance])
    assert (
        decode_node(fmt, encode_node(fmt, LwM2MPath(OBJECT_ID), obj), LwM2MPath(OBJECT_ID), model)
        == obj
    )
    for rid, resource in instance.resources.items():
        rpath = path.child(rid)
        assert decode_node(fmt, encode_node(fmt, rpath, resource), rpath, model) == resource


@SETTINGS
@given(
    instances([T.STRING, T.BOOLEAN, T.OPAQUE, T.OBJLNK]),
    st.sampled_from([CF.SENML_JSON, CF.SENML_CBOR]),
)
def test_senml_round_trip_without_model(instance: ObjectInstance, fmt: int) -> None:
    path = LwM2MPath(OBJECT_ID, instance.id)
    assert decode_node(fmt, encode_node(fmt, path, instance), path) == instance


@SETTINGS
@given(instances(list(VALUES)), st.sampled_from([CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR]))
def test_composite_round_trip(instance: ObjectInstance, fmt: int) -> None:
    model = _registry_for(instance)
    base = LwM2MPath(OBJECT_ID, instance.id)
    nodes = {base.child(rid): r for rid, r in instance.resources.items()}
    assert decode_composite(fmt, encode_composite(fmt, nodes), list(nodes), model) == nodes


@SETTINGS
@given(st.sampled_from(list(VALUES)), st.data())
def test_single_value_formats_round_trip(rtype: ResourceType, data: st.DataObject) -> None:
    model = _registry_for(
        ObjectInstance.from_resources(0, [SingleResource(0, rtype, data.draw(VALUES[rtype]))])
    )
    value = data.draw(VALUES[rtype])
    path = LwM2MPath(OBJECT_ID, 0, 0)
    for fmt in (CF.TEXT, CF.CBOR) + ((CF.OPAQUE,) if rtype is T.OPAQUE else ()):
        node = SingleResource(0, rtype, value)
        assert decode_node(fmt, encode_node(fmt, path, node), path, model) == node
    # A resource instance through TLV: typed with a model, raw bytes without one.
    multi_model = _registry_for(
        ObjectInstance.from_resources(0, [MultipleResource(0, rtype, {3: value})])
    )
    ri_path = path.child(3)
    ri_node = ResourceInstance(3, rtype, value)
    payload = encode_node(CF.TLV, ri_path, ri_node)
    assert decode_node(CF.TLV, payload, ri_path, multi_model) == ri_node
    untyped = decode_node(CF.TLV, payload, ri_path, None)
    assert untyped.type is T.OPAQUE and payload.endswith(untyped.value)  # type: ignore[union-attr,arg-type]


DECODE_PATHS = [
    LwM2MPath(3),
    LwM2MPath(3, 0),
    LwM2MPath(3, 0, 7),
    LwM2MPath(3, 0, 7, 1),
    LwM2MPath(3, 0, 0),
]
ALL_FORMATS = [int(f) for f in CF if f != CF.LINK_FORMAT]
CORE = ModelRegistry.with_core_objects()


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=80),
    st.sampled_from(ALL_FORMATS),
    st.sampled_from(DECODE_PATHS),
    st.booleans(),
)
def test_arbitrary_bytes_raise_only_codec_errors(
    payload: bytes, fmt: int, path: LwM2MPath, with_model: bool
) -> None:
    try:
        decode_node(fmt, payload, path, CORE if with_model else None)
    except CodecError:
        pass
    for decoder in (
        lambda: decode_composite(fmt, payload, None, CORE),
        lambda: decode_paths(fmt, payload),
        lambda: decode_discover(payload),
        lambda: decode_object_list(payload),
    ):
        try:
            decoder()
        except CodecError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=5)
        | st.binary(max_size=5)
        | st.floats(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.integers(-3, 8) | st.text(max_size=3), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    st.sampled_from([CF.SENML_CBOR, CF.LWM2M_CBOR, CF.CBOR]),
)
def test_arbitrary_cbor_documents_raise_only_codec_errors(document: object, fmt: int) -> None:
    import cbor2

    payload = cbor2.dumps(document)
    for path in DECODE_PATHS:
        try:
            decode_node(fmt, payload, path, CORE)
        except CodecError:
            pass
