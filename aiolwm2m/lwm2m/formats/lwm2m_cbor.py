"""LwM2M CBOR (11544, LwM2M 1.2): nested maps keyed by path ids.

A map key is one id (an unsigned integer) or a path fragment (an array of ids); a value is a
nested map, continuing the path, or the resource (instance) value itself. Paths are absolute:
a Read of ``/3/0`` answers ``{[3, 0]: {0: "...", 6: {0: 1}, ...}}``. Values use CBOR's own
types: text for strings, core links and object links (``"oid:iid"``), byte strings for opaque
values, integers, floats (shortest exact width) and booleans; times are written as plain
integer seconds and accepted either plain or with tag 1. Encoding collapses chains of maps
with one entry into a path-array key.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Iterator, Mapping
from typing import Any, Final

import cbor2

from ..errors import CodecError, InvalidPayload, InvalidValue, PathNotAllowed, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
    instance_from_values,
    instance_trusted,
    multiple_trusted,
    node_matches_path,
)
from ..path import MAX_ID, LwM2MPath, path_from_trusted_ids
from ..values import (
    INT64_MAX,
    INT64_MIN,
    ObjectLink,
    ResourceType,
    Value,
    link_from_text,
    seconds_to_time,
    time_to_seconds,
)
from . import plans
from .cbor_support import ShortFloat, dump, int_item, kind_of, load_one
from .content_format import ContentFormat
from .tree_assembly import Leaf, assemble, group_leaves, omits_instance
from .value_mapping import STRING_OBJLNK, ValueMapper

__all__ = [
    "decode_lwm2m_cbor",
    "decode_lwm2m_cbor_composite",
    "decode_lwm2m_cbor_create",
    "encode_lwm2m_cbor",
    "encode_lwm2m_cbor_composite",
    "encode_lwm2m_cbor_create",
]

_FMT = ContentFormat.LWM2M_CBOR
_new_tuple = tuple.__new__
_BAIL: Final = plans.NOT_PLAIN
_dumps: Final = cbor2.dumps
_loads: Final = cbor2.loads
_INSTANCE_KEY_START: Final = b"\xa1\x82"  # a map of one entry, keyed by an array of two ids
# instance path -> the bytes of an instance document up to its body
_INSTANCE_KEYS: Final[dict[tuple[int, ...], bytes]] = {}
_UTC: Final = datetime.UTC
# Types whose valid values are their own CBOR items.
_PLAIN_TYPES: Final[dict[ResourceType, type]] = {
    ResourceType.STRING: str,
    ResourceType.CORELNK: str,
    ResourceType.INTEGER: int,
    ResourceType.UNSIGNED_INTEGER: int,
    ResourceType.BOOLEAN: bool,
    ResourceType.OPAQUE: bytes,
}


# --- decoding ------------------------------------------------------------------------------------
def _key_ids(key: object, prefix: tuple[int, ...]) -> tuple[int, ...]:
    if type(key) is int:
        ids: tuple[Any, ...] = (key,)
    elif type(key) is tuple and key:
        ids = key
    else:
        raise InvalidPayload(
            _FMT, _show(prefix), f"map key {shown(key, 24)} is neither an id nor an id array"
        )
    full = prefix + ids
    if len(full) > 4:
        raise InvalidPayload(_FMT, _show(prefix), "a path is deeper than 4 levels")
    for position, value in enumerate(full[len(prefix) :], start=len(prefix)):
        if (
            type(value) is not int
            or not 0 <= value <= MAX_ID
            or (position == 1 and value == MAX_ID)
        ):
            raise InvalidPayload(_FMT, _show(prefix), f"{shown(value, 24)} is not a valid id")
    return full


def _show(ids: tuple[int, ...]) -> str:
    return "/" + "/".join(map(str, ids))


def _walk(
    mapping: dict[Any, Any],
    prefix: tuple[int, ...],
    out: list[tuple[LwM2MPath, Any]],
    min_depth: int,
) -> None:
    for key, value in mapping.items():
        full = _key_ids(key, prefix)
        if type(value) is dict:
            if len(full) >= 4:  # (checked here: a map may hold itself, via shared references)
                raise InvalidPayload(_FMT, _show(full), "a path is deeper than 4 levels")
            _walk(value, full, out, min_depth)
        else:
            if len(full) < min_depth:
                raise InvalidPayload(
                    _FMT, _show(full), "a value must stand at a resource or resource instance"
                )
            out.append((path_from_trusted_ids(full), value))


def _flatten(document: Any, min_depth: int = 3) -> list[tuple[LwM2MPath, Any]]:
    """(path, raw value) of every value of a document; values stand ``min_depth`` levels
    deep or deeper (2 for a Create without instance id, which skips the instance level)."""
    if type(document) is not dict:
        raise InvalidPayload(_FMT, None, "an LwM2M CBOR document is a map")
    flat: list[tuple[LwM2MPath, Any]] = []
    _walk(document, (), flat, min_depth)
    return flat


def _leaves(document: Any, model: ModelRegistry | None) -> list[Leaf]:
    return _typed_leaves(_flatten(document), model)


def _typed_leaves(flat: list[tuple[LwM2MPath, Any]], model: ModelRegistry | None) -> list[Leaf]:
    convert = ValueMapper(_FMT, model, STRING_OBJLNK).convert
    leaves: list[Leaf] = []
    for path, raw in flat:
        kind = kind_of(raw)
        if kind is None:
            raise InvalidValue(_FMT, path, f"a CBOR {type(raw).__name__} is not an LwM2M value")
        rtype, value, info = convert(path, kind, raw)
        leaves.append((path, rtype, value, info, None))
    return leaves


def _instance_fast(document: Any, path: LwM2MPath, model: ModelRegistry | None) -> Node | None:
    """``{[o, i]: {rid: value | {ri: value}}}``, the shape every Read of an instance has.

    Returns None for any other shape, and for anything wrong or unusual in this one (an
    empty resource, a value of the wrong kind or cardinality): the general path then
    decides, and reports errors in its own words.
    """
    if len(document) != 1:
        return None
    ((key, body),) = document.items()
    if key != tuple(path) or type(body) is not dict:
        return None
    mapper = ValueMapper(_FMT, model, STRING_OBJLNK)
    oid = path[0]
    resources: dict[int, Resource] = {}
    try:
        for rid, raw in body.items():
            if type(rid) is not int or not 0 <= rid <= MAX_ID:
                return None
            rpath = path_from_trusted_ids((oid, path[1], rid))
            if type(raw) is dict:
                info = mapper.info(rpath)
                if not raw or (info is not None and not info[1]):
                    return None
                values: dict[int, Value] = {}
                rtype: ResourceType | None = None
                for ri, item in raw.items():
                    if type(item) is dict or type(ri) is not int or not 0 <= ri <= MAX_ID:
                        return None
                    kind = kind_of(item)
                    if kind is None:
                        return None
                    rtype, values[ri], _ = mapper.convert(rpath, kind, item)
                assert rtype is not None
                resources[rid] = multiple_trusted(rid, rtype, values)
                continue
            kind = kind_of(raw)
            if kind is None:
                return None
            rtype, value, info = mapper.convert(rpath, kind, raw)
            if info is not None and info[1]:
                return None
            resources[rid] = _new_tuple(SingleResource, (rid, rtype, value))
    except CodecError:
        return None
    return instance_trusted(path[1], resources)


def _instance_plain(body: dict[Any, Any], iid: int, plan: plans.ObjectPlan) -> Node | None:
    """``{rid: value | {ri: value}}`` with plain values of defined resources, else None.

    This is the body of every instance read; anything it does not take (unknown resources,
    values needing conversions or checks beyond the plain ones, errors) goes through
    :func:`_instance_fast` and the general path, which decide and report.
    """
    codes = plan.codes
    converted: dict[int, object] | None = None
    for rid, raw in body.items():
        code = codes.get(rid)
        if code is None or type(rid) is not int:
            return None
        if code == plans.STRING:
            if type(raw) is not str:
                return None
        elif code == plans.INTEGER:
            if type(raw) is not int or not INT64_MIN <= raw <= INT64_MAX:
                return None
        else:
            value = _plain_resource(code, raw)
            if value is _BAIL:
                return None
            if value is not raw:
                if converted is None:
                    converted = {}
                converted[rid] = value
    # The decoder's dicts become the nodes' (no one else holds them); changed only now, since
    # failing checks above hand the body on to the general path unchanged.
    if converted is not None:
        body.update(converted)
    return instance_from_values(iid, body, plan.rtypes)


def _plain_resource(code: int, raw: object) -> Any:
    """The value of a resource of type ``code`` (multiple ones too); _BAIL unless plain."""
    if code < plans.MULTIPLE:
        return plans.plain_value(code, raw)
    if type(raw) is not dict or not raw:  # no instances: the general path decides
        return _BAIL
    code -= plans.MULTIPLE
    changed: dict[Any, Any] | None = None
    for ri, item in raw.items():
        if type(ri) is not int or not 0 <= ri <= MAX_ID:
            return _BAIL
        if code == plans.INTEGER:
            if type(item) is not int or not INT64_MIN <= item <= INT64_MAX:
                return _BAIL
            continue
        value = plans.plain_value(code, item)
        if value is _BAIL:
            return _BAIL
        if value is not item:
            if changed is None:
                changed = {}
            changed[ri] = value
    return raw if changed is None else {**raw, **changed}


# --- known instance shapes -----------------------------------------------------------------------
# Checking each resource of an instance body one by one in Python costs more than cbor2's whole
# decoding. A client answers every read of an instance with the same resources, so the checks
# that depend only on which resources are there are done once per set of resource ids (a
# "shape"): the Python types the values must have, which of them are 64-bit integers, which
# need converting (times, links) or looking into (multiple resources). A body of a known shape
# is then checked with a few C-level passes.
_PYTHON_TYPES: Final = {
    plans.STRING: str,
    plans.INTEGER: int,
    plans.UNSIGNED: int,
    plans.FLOAT: float,
    plans.BOOLEAN: bool,
    plans.OPAQUE: bytes,
    plans.TIME: int,
    plans.OBJLNK: str,
}
_SHAPES_PER_OBJECT: Final = 64
_SHAPES: Final = "lwm2m-cbor-shapes"
_INTEGERS: Final = plans.MULTIPLE | plans.INTEGER


class _Shape:
    __slots__ = ("integers", "key_types", "others", "value_types")

    def __init__(self, keys: tuple[int, ...], codes: dict[int, int]) -> None:
        self.key_types = (int,) * len(keys)
        self.value_types = tuple(
            dict if codes[rid] >= plans.MULTIPLE else _PYTHON_TYPES[codes[rid]] for rid in keys
        )
        self.integers = tuple(i for i, rid in enumerate(keys) if codes[rid] == plans.INTEGER)
        # (position, resource id, code) of the values _plain_resource must see
        self.others = tuple(
            (i, rid, codes[rid])
            for i, rid in enumerate(keys)
            if codes[rid] not in (plans.STRING, plans.INTEGER)
        )


def _instance_of_shape(
    shape: _Shape, keys: tuple[Any, ...], body: dict[Any, Any], iid: int, plan: plans.ObjectPlan
) -> Node | None:
    raws = tuple(body.values())
    if tuple(map(type, raws)) != shape.value_types or tuple(map(type, keys)) != shape.key_types:
        return None
    for i in shape.integers:
        if not INT64_MIN <= raws[i] <= INT64_MAX:
            return None
    converted: dict[int, object] = {}
    for i, rid, code in shape.others:
        raw = raws[i]
        # (The two commonest cases inline: integer multiple resources and times.)
        if code == _INTEGERS:
            if not raw:
                return None
            for ri, item in raw.items():
                if (
                    type(ri) is not int
                    or not 0 <= ri <= MAX_ID
                    or type(item) is not int
                    or not INT64_MIN <= item <= INT64_MAX
                ):
                    return None
        elif code == plans.TIME:
            try:
                converted[rid] = seconds_to_time(raw)
            except InvalidValue:
                return None
        else:
            value = _plain_resource(code, raw)
            if value is _BAIL:
                return None
            if value is not raw:
                converted[rid] = value
    if converted:
        body.update(converted)  # (only now: failing checks above hand the body on unchanged)
    return instance_from_values(iid, body, plan.rtypes)


def _decode_instance(body: dict[Any, Any], iid: int, plan: plans.ObjectPlan) -> Node | None:
    shapes: dict[tuple[Any, ...], _Shape] | None = plan.scratch.get(_SHAPES)
    if shapes is None:
        shapes = plan.scratch[_SHAPES] = {}
    keys = tuple(body)
    shape = shapes.get(keys)
    if shape is not None:
        found = _instance_of_shape(shape, keys, body, iid, plan)
        if found is not None:
            return found
    plain = _instance_plain(body, iid, plan)
    if plain is not None and shape is None:
        if len(shapes) >= _SHAPES_PER_OBJECT:
            shapes.clear()
        shapes[keys] = _Shape(keys, plan.codes)
    return plain


# --- known payload layouts -----------------------------------------------------------------------
# Even with its checks reduced to a known shape, an instance costs cbor2's decoding plus Python
# work per resource. But a client answers the reads of one instance with payloads that differ
# only in their values most of the time: same resources, same item heads, same string lengths.
# As in TLV (see there), a payload the fast path accepted is kept as a layout, keyed by size:
# one struct reads every byte that is not a value (item heads, keys, lengths) to compare with the
# recorded ones, one reads the values. Equal structural bytes at equal offsets mean the same
# items, so only the values are new; cbor2 then never runs. Layouts are recorded only for plain
# definite-length items (no tags), which is what encoders write.
_LAYOUTS: Final = "lwm2m-cbor-layouts"
_ARGUMENT_FIELDS: Final = {24: ("B", 1), 25: ("H", 2), 26: ("I", 4), 27: ("Q", 8)}
_FLOAT_FIELDS: Final = {0xF9: ("e", 2), 0xFA: ("f", 4), 0xFB: ("d", 8)}
# How a value comes out of its field: the field as is, a string to decode, the argument of a
# negative integer, and these plus the conversion or check the resource type needs.
_AS_IS, _TEXT, _NEGATIVE, _INT64, _NEGATIVE_INT64, _TIME, _NEGATIVE_TIME, _LINK = range(8)
# (field index, conversion) or (-1, the value itself) when the item holds its value
_Source = tuple[int, Any]
# (resource id, source) for a single resource, (resource id, ((instance id, source), ...))
_LayoutStep = tuple[int, "_Source | tuple[tuple[int, _Source], ...]"]


class _NotRecordable(Exception):
    pass


class _CborLayout:
    __slots__ = ("expected", "headers", "iid", "steps", "values")

    def __init__(
        self,
        iid: int,
        headers: str,
        expected: tuple[int, ...],
        values: str,
        steps: tuple[_LayoutStep, ...],
    ) -> None:
        self.iid = iid
        self.headers = struct.Struct(headers).unpack
        self.expected = expected
        self.values = struct.Struct(values).unpack
        self.steps = steps


def _record_layout(data: bytes, iid: int, codes: dict[int, int]) -> _CborLayout:
    """The layout of an instance payload the fast path has accepted; _NotRecordable if odd."""
    header_format = [">"]
    value_format = [">"]
    expected: list[int] = []
    fields = 0
    pos = 0

    def structural(end: int) -> None:
        nonlocal pos
        header_format.append("B" * (end - pos))
        value_format.append(f"{end - pos}x")
        expected.extend(data[pos:end])
        pos = end

    def head() -> tuple[int, int]:
        """(major type, argument) of the item at pos, its head read as structural bytes."""
        first = data[pos]
        info = first & 0x1F
        if info < 24:
            argument, end = info, pos + 1
        elif info <= 27:
            width = _ARGUMENT_FIELDS[info][1]
            argument, end = int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width
        else:
            raise _NotRecordable
        structural(end)
        return first & 0xE0, argument

    def field(format_char: str, width: int, conversion: int) -> _Source:
        nonlocal pos, fields
        header_format.append(f"{width}x")
        value_format.append(format_char)
        pos += width
        fields += 1
        return (fields - 1, conversion)

    def value(code: int) -> _Source:
        first = data[pos]
        major, info = first & 0xE0, first & 0x1F
        if major <= 0x20 and 24 <= info <= 27:  # an integer with its argument in a field
            structural(pos + 1)
            format_char, width = _ARGUMENT_FIELDS[info]
            negative = major == 0x20
            if code == plans.TIME:
                conversion = _NEGATIVE_TIME if negative else _TIME
            elif code == plans.INTEGER and info == 27:
                conversion = _NEGATIVE_INT64 if negative else _INT64
            else:
                conversion = _NEGATIVE if negative else _AS_IS
            return field(format_char, width, conversion)
        if first in _FLOAT_FIELDS:
            structural(pos + 1)
            return field(*_FLOAT_FIELDS[first], _AS_IS)
        if major == 0x60 or major == 0x40:
            major, length = head()
            if major == 0x40:
                return field(f"{length}s", length, _AS_IS)
            return field(f"{length}s", length, _LINK if code == plans.OBJLNK else _TEXT)
        if (major <= 0x20 and info < 24) or first in (0xF4, 0xF5):
            start = pos
            structural(pos + 1)
            raw = _loads(data[start:pos])
            converted = plans.plain_value(code, raw)
            if converted is _BAIL:
                raise _NotRecordable
            return (-1, converted)
        raise _NotRecordable

    def expect(major: int) -> int:
        found, argument = head()
        if found != major:
            raise _NotRecordable
        return argument

    try:
        if expect(0xA0) != 1 or expect(0x80) != 2:
            raise _NotRecordable
        expect(0x00)  # object id
        expect(0x00)  # instance id
        steps: list[_LayoutStep] = []
        for _ in range(expect(0xA0)):
            rid = expect(0x00)
            code = codes[rid]
            if code < plans.MULTIPLE:
                steps.append((rid, value(code)))
                continue
            entries = []
            for _ in range(expect(0xA0)):
                ri = expect(0x00)
                entries.append((ri, value(code - plans.MULTIPLE)))
            steps.append((rid, tuple(entries)))
        if pos != len(data):
            raise _NotRecordable
    except (IndexError, KeyError):
        raise _NotRecordable from None
    return _CborLayout(
        iid, "".join(header_format), tuple(expected), "".join(value_format), tuple(steps)
    )


def _layout_value(fields: tuple[Any, ...], source: _Source) -> Any:
    index, conversion = source
    if index < 0:
        return conversion
    raw = fields[index]
    try:
        if conversion == _AS_IS:
            return raw
        if conversion == _TEXT:
            return raw.decode("utf-8")
        if conversion == _NEGATIVE:
            return -1 - raw
        if conversion == _INT64:
            return raw if raw <= INT64_MAX else _BAIL
        if conversion == _NEGATIVE_INT64:
            return -1 - raw if -1 - raw >= INT64_MIN else _BAIL
        if conversion == _TIME:
            return seconds_to_time(raw)
        if conversion == _NEGATIVE_TIME:
            return seconds_to_time(-1 - raw)
        return link_from_text(raw.decode("utf-8"))
    except (UnicodeDecodeError, InvalidValue):
        return _BAIL


def _instance_from_layout(
    layout: _CborLayout, data: bytes, plan: plans.ObjectPlan
) -> ObjectInstance | None:
    if layout.headers(data) != layout.expected:
        return None
    fields = layout.values(data)
    values: dict[int, object] = {}
    for rid, source in layout.steps:
        if type(source[0]) is int:
            index, conversion = source
            if conversion == _TEXT and index >= 0:  # (inline: most values are strings)
                try:
                    values[rid] = fields[index].decode("utf-8")
                except UnicodeDecodeError:
                    return None
                continue
            value = _layout_value(fields, source)
            if value is _BAIL:
                return None
            values[rid] = value
            continue
        instances: dict[int, object] = {}
        for ri, item in source:  # type: ignore[misc]
            value = _layout_value(fields, item)
            if value is _BAIL:
                return None
            instances[ri] = value
        values[rid] = instances
    return instance_from_values(layout.iid, values, plan.rtypes)


def _layouts_of(plan: plans.ObjectPlan) -> plans.LayoutCache[_CborLayout]:
    layouts: plans.LayoutCache[_CborLayout] | None = plan.scratch.get(_LAYOUTS)
    if layouts is None:
        layouts = plan.scratch[_LAYOUTS] = plans.LayoutCache()
    return layouts


def _remember_layout(payload: bytes, iid: int, plan: plans.ObjectPlan) -> None:
    layouts = _layouts_of(plan)
    if layouts.should_record():
        try:
            layouts.store(len(payload), _record_layout(payload, iid, plan.codes))
        except _NotRecordable:
            pass


def decode_lwm2m_cbor(payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    plan = plans.object_plan(model, path[0]) if len(path) == 2 else None
    if plan is not None:
        layouts = _layouts_of(plan)
        layout = layouts.by_size.get(len(payload))
        if layout is not None and layout.iid == path[1]:
            found = _instance_from_layout(layout, payload, plan)
            if found is not None:
                layouts.misses = 0
                return found
    document = load_one(_FMT, payload)
    if len(path) == 2 and type(document) is dict:
        if len(document) == 1 and plan is not None:
            ((key, body),) = document.items()
            if type(body) is dict and key == path and type(key) is tuple:
                plain = _decode_instance(body, path[1], plan)
                if plain is not None:
                    _remember_layout(payload, path[1], plan)
                    return plain
        fast = _instance_fast(document, path, model)
        if fast is not None:
            return fast
    leaves = _leaves(document, model)
    base_info = ValueMapper(_FMT, model).info(path) if len(path) >= 3 else None
    return assemble(_FMT, path, leaves, base_info)


def decode_lwm2m_cbor_create(
    payload: bytes, path: LwM2MPath, model: ModelRegistry | None, free_id: int
) -> Node:
    """The object at ``path`` a Create carries: values at ``/o/i/r`` (``/o/i/r/ri``) name
    their instance; values at ``/o/r`` (``/o/r/ri``) leave it out and stand in ``free_id``."""
    flat = _flatten(load_one(_FMT, payload), min_depth=2)
    oid = path[0]
    for value_path, _ in flat:
        if value_path[0] != oid:
            raise PathNotAllowed(_FMT, value_path, f"is outside the request path {path}")
    if omits_instance(_FMT, oid, [value_path for value_path, _ in flat], model):
        flat = [
            (path_from_trusted_ids((oid, free_id, *value_path[1:])), raw)
            for value_path, raw in flat
        ]
    return assemble(_FMT, path, _typed_leaves(flat, model))


def encode_lwm2m_cbor_create(path: LwM2MPath, instance: ObjectInstance) -> bytes:
    """A Create of ``instance`` that leaves its id to the client: ``{o: {r: value}}``,
    without the instance level (one-entry maps collapse into id-array keys)."""
    return dump(_collapse({path[0]: _subtree(path, instance)}))


def decode_lwm2m_cbor_composite(
    payload: bytes, paths: list[LwM2MPath] | None, model: ModelRegistry | None
) -> dict[LwM2MPath, Node]:
    return group_leaves(_FMT, _leaves(load_one(_FMT, payload), model), paths)


# --- encoding ------------------------------------------------------------------------------------
def _item(path: object, rtype: ResourceType, value: Value) -> object:
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        if type(value) is str:
            return value
    elif rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
        if type(value) is int:
            return value
    elif rtype is ResourceType.FLOAT:
        if type(value) is float:
            return ShortFloat(value)
    elif rtype is ResourceType.BOOLEAN:
        if type(value) is bool:
            return value
    elif rtype is ResourceType.OPAQUE:
        if isinstance(value, bytes):
            return value
    elif rtype is ResourceType.TIME:
        try:
            return time_to_seconds(value)  # type: ignore[arg-type]
        except (TypeError, AttributeError):
            pass
    elif rtype is ResourceType.OBJLNK and type(value) is ObjectLink:
        return str(value)
    raise InvalidValue(_FMT, path, f"cannot encode {shown(value)} as {rtype.value}")


def _subtree(path: LwM2MPath, node: Node) -> Any:
    if isinstance(node, SingleResource | ResourceInstance):
        return _item(path, node.type, node.value)
    if isinstance(node, MultipleResource):
        rtype = node.type
        return {ri: _item(path, rtype, v) for ri, v in node.instances.items()}
    if isinstance(node, ObjectInstance):
        return {rid: _subtree(path, r) for rid, r in node.resources.items()}
    return {iid: _subtree(path, i) for iid, i in node.instances.items()}


def _key(ids: tuple[int, ...]) -> int | tuple[int, ...]:
    return ids[0] if len(ids) == 1 else ids


def _plain_item(rtype: ResourceType, value: Value) -> object:
    """What :func:`_item` gives for a valid value that is not its own item, else None."""
    if rtype is ResourceType.TIME:
        if type(value) is datetime.datetime and value.tzinfo is _UTC:
            return time_to_seconds(value)
        return None
    if rtype is ResourceType.FLOAT and type(value) is float:
        return ShortFloat(value)
    if rtype is ResourceType.OBJLNK and type(value) is ObjectLink:
        return str(value)
    return None


def _instance_map(instance: ObjectInstance) -> tuple[dict[int, Any], bool] | None:
    """What :func:`_subtree` gives for an instance when every value is valid, and whether it
    holds floats (:class:`ShortFloat`, which cbor2 writes through the ``dump`` hook).

    None sends the instance through :func:`_subtree`, which also reports bad values.
    """
    plain_types = _PLAIN_TYPES
    body: dict[int, Any] = {}
    floats = False
    for rid, resource in instance.resources.items():
        rtype = resource[1]
        value: Any = resource[2]
        plain_type = plain_types.get(rtype)
        if type(value) is plain_type:  # (never a multiple resource's mapping)
            body[rid] = value
            continue
        if type(resource) is SingleResource:
            value = _plain_item(rtype, value)
            if value is None:
                return None
            floats = floats or rtype is ResourceType.FLOAT
            body[rid] = value
            continue
        items: dict[int, Any] = value.copy()
        for ri, item in items.items():
            if type(item) is not plain_type:
                item = _plain_item(rtype, item)
                if item is None:
                    return None
                floats = floats or rtype is ResourceType.FLOAT
                items[ri] = item  # (replacing values does not disturb the iteration)
        body[rid] = items
    return body, floats


def encode_lwm2m_cbor(path: LwM2MPath, node: Node) -> bytes:
    if type(node) is ObjectInstance and len(path) == 2 and node[0] == path[1]:
        mapped = _instance_map(node)
        if mapped is not None:
            # {[o, i]: body}, the outer map written here; cbor2 encodes markedly slower when
            # given a hook, which only floats need.
            outer = _INSTANCE_KEYS.get(path)
            if outer is None:
                outer = _INSTANCE_KEY_START + int_item(path[0]) + int_item(path[1])  # type: ignore[operator]
                if len(_INSTANCE_KEYS) >= 4096:
                    _INSTANCE_KEYS.clear()
                _INSTANCE_KEYS[path] = outer
            return outer + (dump(mapped[0]) if mapped[1] else _dumps(mapped[0]))
    problem = node_matches_path(path, node)
    if problem is not None:
        raise PathNotAllowed(_FMT, path, problem)
    return dump({_key(tuple(path)): _subtree(path, node)})


def _merge(trie: dict[int, Any], ids: tuple[int, ...], subtree: Any, path: LwM2MPath) -> None:
    for position, key in enumerate(ids[:-1]):
        child = trie.setdefault(key, {})
        if type(child) is not dict:
            raise PathNotAllowed(_FMT, path, f"overlaps a value at {_show(ids[: position + 1])}")
        trie = child
    last = ids[-1]
    if last in trie:
        existing = trie[last]
        if type(existing) is dict and type(subtree) is dict:
            for key, value in subtree.items():
                _merge(existing, (key,), value, path)
            return
        raise PathNotAllowed(_FMT, path, "appears twice")
    trie[last] = subtree


def _collapse(trie: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in trie.items():
        ids = [key]
        while type(value) is dict and len(value) == 1:
            ((child_key, child_value),) = value.items()
            ids.append(child_key)
            value = child_value
        out[_key(tuple(ids))] = _collapse(value) if type(value) is dict else value
    return out


def _composite_trie(nodes: Mapping[LwM2MPath, Node]) -> Iterator[tuple[LwM2MPath, Any]]:
    for path, node in nodes.items():
        problem = node_matches_path(path, node)
        if problem is not None:
            raise PathNotAllowed(_FMT, path, problem)
        yield path, _subtree(path, node)


def encode_lwm2m_cbor_composite(nodes: Mapping[LwM2MPath, Node]) -> bytes:
    trie: dict[int, Any] = {}
    for path, subtree in _composite_trie(nodes):
        _merge(trie, tuple(path), subtree, path)
    return dump(_collapse(trie))
