"""LwM2M TLV (11542, and the pre-1.0 number 1542) for every path level.

Each TLV is a header byte (bits 7-6 kind: 00 object instance, 01 resource instance,
10 multiple resource, 11 resource with value; bit 5: 16-bit identifier; bits 4-3: width of
the length field, 0 meaning the length sits in bits 2-0), the identifier, the length and the
value. Values are untyped on the wire, so the model supplies the type; a resource the model
does not define decodes as OPAQUE (its raw bytes).

Integers (and times) are written in the fewest of 1, 2, 4 or 8 bytes; floats in 4 bytes when
float32 holds them exactly, else 8.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import InvalidPayload, InvalidValue, PathNotAllowed, UnsupportedFormat, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    LwM2MObject,
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
    object_trusted,
    resource_instance_trusted,
    single_trusted,
)
from ..path import LwM2MPath, path_from_trusted_ids
from ..values import (
    ObjectLink,
    ResourceType,
    Value,
    link_from_ids,
    seconds_to_time,
    time_to_seconds,
)
from . import plans
from .value_mapping import ResourceInfo, ValueMapper

__all__ = ["decode_tlv", "decode_tlv_create", "encode_tlv"]

OBJECT_INSTANCE: Final = 0
RESOURCE_INSTANCE: Final = 1
MULTIPLE_RESOURCE: Final = 2
RESOURCE_VALUE: Final = 3
_KIND_NAMES: Final = ("object instance", "resource instance", "multiple resource", "resource")

_FLOAT32: Final = struct.Struct(">f")
_FLOAT64: Final = struct.Struct(">d")
_OBJLNK: Final = struct.Struct(">HH")
_INT_WIDTHS: Final = frozenset({1, 2, 4, 8})


# --- values ------------------------------------------------------------------------------------
def _enc_string(value: Value) -> bytes:
    return value.encode("utf-8")  # type: ignore[union-attr]


def _enc_signed(value: Value) -> bytes:
    number: int = value  # type: ignore[assignment]
    if -0x80 <= number <= 0x7F:
        return number.to_bytes(1, "big", signed=True)
    if -0x8000 <= number <= 0x7FFF:
        return number.to_bytes(2, "big", signed=True)
    if -0x80000000 <= number <= 0x7FFFFFFF:
        return number.to_bytes(4, "big", signed=True)
    return number.to_bytes(8, "big", signed=True)


def _enc_unsigned(value: Value) -> bytes:
    number: int = value  # type: ignore[assignment]
    if number <= 0xFF:
        return number.to_bytes(1, "big")
    if number <= 0xFFFF:
        return number.to_bytes(2, "big")
    if number <= 0xFFFFFFFF:
        return number.to_bytes(4, "big")
    return number.to_bytes(8, "big")


def _enc_float(value: Value) -> bytes:
    number: float = value  # type: ignore[assignment]
    try:
        single = _FLOAT32.pack(number)
        if _FLOAT32.unpack(single)[0] == number:
            return single
    except OverflowError:
        pass
    return _FLOAT64.pack(number)


def _enc_bool(value: Value) -> bytes:
    return b"\x01" if value else b"\x00"


def _enc_opaque(value: Value) -> bytes:
    return bytes(value)  # type: ignore[arg-type]


def _enc_time(value: Value) -> bytes:
    return _enc_signed(time_to_seconds(value))  # type: ignore[arg-type]


def _enc_objlnk(value: Value) -> bytes:
    return _OBJLNK.pack(value.object_id, value.instance_id)  # type: ignore[union-attr]


def _enc_none(value: Value) -> bytes:
    raise ValueError("executable resources carry no value")


_ENCODERS: Final[dict[ResourceType, Callable[[Value], bytes]]] = {
    ResourceType.STRING: _enc_string,
    ResourceType.CORELNK: _enc_string,
    ResourceType.INTEGER: _enc_signed,
    ResourceType.UNSIGNED_INTEGER: _enc_unsigned,
    ResourceType.FLOAT: _enc_float,
    ResourceType.BOOLEAN: _enc_bool,
    ResourceType.OPAQUE: _enc_opaque,
    ResourceType.TIME: _enc_time,
    ResourceType.OBJLNK: _enc_objlnk,
    ResourceType.NONE: _enc_none,
}


def _dec_string(raw: bytes) -> Value:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None


def _dec_signed(raw: bytes) -> Value:
    if len(raw) not in _INT_WIDTHS:
        raise ValueError(f"an integer takes 1, 2, 4 or 8 bytes, not {len(raw)}")
    return int.from_bytes(raw, "big", signed=True)


def _dec_unsigned(raw: bytes) -> Value:
    if len(raw) not in _INT_WIDTHS:
        raise ValueError(f"an unsigned integer takes 1, 2, 4 or 8 bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def _dec_float(raw: bytes) -> Value:
    if len(raw) == 4:
        return float(_FLOAT32.unpack(raw)[0])
    if len(raw) == 8:
        return float(_FLOAT64.unpack(raw)[0])
    raise ValueError(f"a float takes 4 or 8 bytes, not {len(raw)}")


def _dec_bool(raw: bytes) -> Value:
    if raw == b"\x00":
        return False
    if raw == b"\x01":
        return True
    raise ValueError("a boolean is one byte, 0 or 1")


def _dec_opaque(raw: bytes) -> Value:
    return raw


def _dec_time(raw: bytes) -> Value:
    seconds: int = _dec_signed(raw)  # type: ignore[assignment]
    try:
        return seconds_to_time(seconds)
    except InvalidValue as exc:
        raise ValueError(exc.reason) from None


def _dec_objlnk(raw: bytes) -> Value:
    if len(raw) != 4:
        raise ValueError(f"an object link takes 4 bytes, not {len(raw)}")
    return ObjectLink(*_OBJLNK.unpack(raw))


def _dec_none(raw: bytes) -> Value:
    raise ValueError("the resource is executable and carries no value")


_DECODERS: Final[dict[ResourceType, Callable[[bytes], Value]]] = {
    ResourceType.STRING: _dec_string,
    ResourceType.CORELNK: _dec_string,
    ResourceType.INTEGER: _dec_signed,
    ResourceType.UNSIGNED_INTEGER: _dec_unsigned,
    ResourceType.FLOAT: _dec_float,
    ResourceType.BOOLEAN: _dec_bool,
    ResourceType.OPAQUE: _dec_opaque,
    ResourceType.TIME: _dec_time,
    ResourceType.OBJLNK: _dec_objlnk,
    ResourceType.NONE: _dec_none,
}


# --- encoding ----------------------------------------------------------------------------------
def _header(kind: int, ident: int, length: int) -> bytes:
    first = kind << 6
    id_bytes = bytes((ident,)) if ident <= 0xFF else ident.to_bytes(2, "big")
    if ident > 0xFF:
        first |= 0x20
    if length < 8:
        return bytes((first | length,)) + id_bytes
    if length <= 0xFF:
        return bytes((first | 0x08,)) + id_bytes + bytes((length,))
    if length <= 0xFFFF:
        return bytes((first | 0x10,)) + id_bytes + length.to_bytes(2, "big")
    if length <= 0xFFFFFF:
        return bytes((first | 0x18,)) + id_bytes + length.to_bytes(3, "big")
    raise ValueError(f"a TLV value is limited to 16 MiB - 1, got {length} bytes")


class _Encoder:
    __slots__ = ("fmt", "parts")

    def __init__(self, fmt: int) -> None:
        self.fmt = fmt
        self.parts: list[bytes] = []

    def value(self, path: LwM2MPath, rtype: ResourceType, value: Value) -> bytes:
        try:
            return _ENCODERS[rtype](value)
        except (ValueError, TypeError, AttributeError, OverflowError, struct.error) as exc:
            raise InvalidValue(
                self.fmt, path, f"cannot encode {shown(value)} as {rtype.value}: {exc}"
            ) from None

    def resource(self, path: LwM2MPath, resource: Resource) -> bytes:
        if type(resource) is SingleResource:
            data = self.value(path, resource.type, resource.value)
            return _header(RESOURCE_VALUE, resource.id, len(data)) + data
        inner = self.instances(path, resource)  # type: ignore[arg-type]
        return _header(MULTIPLE_RESOURCE, resource.id, len(inner)) + inner

    def instances(self, path: LwM2MPath, resource: MultipleResource) -> bytes:
        rtype = resource.type
        chunks = []
        for ri, value in resource.instances.items():
            data = self.value(path, rtype, value)
            chunks.append(_header(RESOURCE_INSTANCE, ri, len(data)) + data)
        return b"".join(chunks)

    def instance_body(self, path: LwM2MPath, instance: ObjectInstance) -> bytes:
        resource = self.resource
        return b"".join(
            [
                resource(path_from_trusted_ids((*path, rid)), r)
                for rid, r in instance.resources.items()
            ]
        )


# --- encoding fast path ------------------------------------------------------------------------
# Whole TLVs (header and value) of integers with a one-byte identifier, by value width.
_PACK_HEADER: Final = struct.Struct(">BB").pack
_PACK_HEADER_LENGTH: Final = struct.Struct(">BBB").pack
_PACK_INT8: Final = struct.Struct(">BBb").pack
_PACK_INT16: Final = struct.Struct(">BBh").pack
_PACK_INT32: Final = struct.Struct(">BBi").pack
_PACK_OBJLNK: Final = struct.Struct(">BBHH").pack
_STRING: Final = ResourceType.STRING
_INTEGER: Final = ResourceType.INTEGER
_TIME: Final = ResourceType.TIME
_OBJLNK_TYPE: Final = ResourceType.OBJLNK
_UTC: Final = datetime.UTC


def _plain_bytes(rtype: ResourceType, value: Value) -> bytes | None:
    """The TLV value of ``value``, or None when the general path must report a problem."""
    try:
        return _ENCODERS[rtype](value)
    except (ValueError, TypeError, AttributeError, OverflowError, struct.error):
        return None


def _append_tlv(parts: list[bytes], kind: int, ident: int, data: bytes) -> None:
    length = len(data)
    if ident > 0xFF or length > 0xFF:
        parts.append(_header(kind >> 6, ident, length))
    elif length < 8:
        parts.append(_PACK_HEADER(kind | length, ident))
    else:
        parts.append(_PACK_HEADER_LENGTH(kind | 0x08, ident, length))
    parts.append(data)


def _append_value(
    parts: list[bytes], kind: int, ident: int, rtype: ResourceType, value: Value
) -> bool:
    """Append the TLV of one value with a one-byte identifier; False if it needs _Encoder."""
    if rtype is _STRING and type(value) is str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        length = len(data)
        if length < 8:
            parts.append(_PACK_HEADER(kind | length, ident))
        elif length <= 0xFF:
            parts.append(_PACK_HEADER_LENGTH(kind | 0x08, ident, length))
        else:
            parts.append(_header(kind >> 6, ident, length))
        parts.append(data)
        return True
    if rtype is _INTEGER and type(value) is int:
        number = value
    elif rtype is _TIME and type(value) is datetime.datetime and value.tzinfo is _UTC:
        number = time_to_seconds(value)
    elif rtype is _OBJLNK_TYPE and type(value) is ObjectLink:
        parts.append(_PACK_OBJLNK(kind | 4, ident, value.object_id, value.instance_id))
        return True
    else:
        number = None
    if number is not None and -0x80000000 <= number <= 0x7FFFFFFF:
        if -0x80 <= number <= 0x7F:
            parts.append(_PACK_INT8(kind | 1, ident, number))
        elif -0x8000 <= number <= 0x7FFF:
            parts.append(_PACK_INT16(kind | 2, ident, number))
        else:
            parts.append(_PACK_INT32(kind | 4, ident, number))
        return True
    encoded = _plain_bytes(rtype, value)
    if encoded is None:
        return False
    _append_tlv(parts, kind, ident, encoded)
    return True


def _instance_body_plain(instance: ObjectInstance) -> bytes | None:
    """The resource TLVs of ``instance``; None when one needs _Encoder (to report it)."""
    parts: list[bytes] = []
    append = parts.append
    for rid, resource in instance.resources.items():
        if rid > 0xFF:
            return None
        rtype = resource[1]
        if type(resource) is SingleResource:
            value: Any = resource[2]
            if rtype is _STRING and type(value) is str:
                try:
                    data = value.encode("utf-8")
                except UnicodeEncodeError:
                    return None
                length = len(data)
                if length < 8:
                    append(_PACK_HEADER(0xC0 | length, rid))
                elif length <= 0xFF:
                    append(_PACK_HEADER_LENGTH(0xC8, rid, length))
                else:
                    append(_header(RESOURCE_VALUE, rid, length))
                append(data)
            elif rtype is _INTEGER and type(value) is int and -0x8000 <= value <= 0x7FFF:
                if -0x80 <= value <= 0x7F:
                    append(_PACK_INT8(0xC1, rid, value))
                else:
                    append(_PACK_INT16(0xC2, rid, value))
            elif not _append_value(parts, 0xC0, rid, rtype, value):
                return None
            continue
        inner: list[bytes] = []
        instances: Mapping[int, Value] = resource[2]  # type: ignore[assignment]
        if rtype is _INTEGER:
            for ri, value in instances.items():
                if ri > 0xFF:
                    return None
                if type(value) is int and -0x80 <= value <= 0x7F:
                    inner.append(_PACK_INT8(0x41, ri, value))
                elif type(value) is int and -0x8000 <= value <= 0x7FFF:
                    inner.append(_PACK_INT16(0x42, ri, value))
                elif not _append_value(inner, 0x40, ri, rtype, value):
                    return None
        else:
            for ri, value in instances.items():
                if ri > 0xFF or not _append_value(inner, 0x40, ri, rtype, value):
                    return None
        data = b"".join(inner)
        length = len(data)
        if length < 8:
            append(_PACK_HEADER(0x80 | length, rid))
        elif length <= 0xFF:
            append(_PACK_HEADER_LENGTH(0x88, rid, length))
        else:
            append(_header(MULTIPLE_RESOURCE, rid, length))
        append(data)
    return b"".join(parts)


def encode_tlv(fmt: int, path: LwM2MPath, node: Node) -> bytes:
    instance_read = type(node) is ObjectInstance and len(path) == 2 and node[0] == path[1]
    if not instance_read:
        problem = node_matches_path(path, node)
        if problem is not None:
            raise PathNotAllowed(fmt, path, problem)
    try:
        if instance_read:
            plain = _instance_body_plain(node)  # type: ignore[arg-type]
            if plain is not None:
                return plain
        encoder = _Encoder(fmt)
        node_type = type(node)
        if node_type is ObjectInstance:
            return encoder.instance_body(path, node)  # type: ignore[arg-type]
        if node_type is SingleResource or node_type is MultipleResource:
            return encoder.resource(path, node)  # type: ignore[arg-type]
        if node_type is ResourceInstance:
            data = encoder.value(path, node.type, node.value)  # type: ignore[union-attr]
            return _header(RESOURCE_INSTANCE, node.id, len(data)) + data
        assert isinstance(node, LwM2MObject)
        chunks = []
        for iid, instance in node.instances.items():
            body = _instance_body_plain(instance)
            if body is None:
                body = encoder.instance_body(path_from_trusted_ids((*path, iid)), instance)
            chunks.append(_header(OBJECT_INSTANCE, iid, len(body)) + body)
        return b"".join(chunks)
    except ValueError as exc:
        raise InvalidValue(fmt, path, str(exc)) from None


# --- decoding ----------------------------------------------------------------------------------
# (kind, identifier, value start, value end)
_Item = tuple[int, int, int, int]


def _split(fmt: int, data: bytes, start: int, end: int, path: LwM2MPath) -> list[_Item]:
    """The TLVs laid side by side in ``data[start:end]``."""
    items: list[_Item] = []
    pos = start
    while pos < end:
        first = data[pos]
        p = pos + 1
        id_width = 2 if first & 0x20 else 1
        length_width = (first >> 3) & 0x03
        if p + id_width + length_width > end:
            raise InvalidPayload(fmt, path, "truncated TLV header", offset=pos)
        ident = data[p] if id_width == 1 else data[p] << 8 | data[p + 1]
        p += id_width
        if length_width == 0:
            length = first & 0x07
        else:
            length = int.from_bytes(data[p : p + length_width], "big")
            p += length_width
        if p + length > end:
            raise InvalidPayload(
                fmt,
                path,
                f"TLV value of {length} bytes runs past the end of its container",
                offset=pos,
            )
        items.append((first >> 6, ident, p, p + length))
        pos = p + length
    return items


class _Decoder:
    __slots__ = ("data", "fmt", "mapper")

    def __init__(self, fmt: int, data: bytes, model: ModelRegistry | None) -> None:
        self.fmt = fmt
        self.data = data
        self.mapper = ValueMapper(fmt, model)

    def value(
        self, path: LwM2MPath, info: ResourceInfo, start: int, end: int
    ) -> tuple[ResourceType, Value]:
        raw = self.data[start:end]
        if info is None:
            return ResourceType.OPAQUE, raw
        rtype = info[0]
        try:
            return rtype, _DECODERS[rtype](raw)
        except ValueError as exc:
            raise InvalidValue(self.fmt, path, str(exc), offset=start) from None

    def resource(self, parent: LwM2MPath, item: _Item) -> Resource:
        kind, rid, start, end = item
        path = path_from_trusted_ids((*parent, rid))
        info = self.mapper.info(path)
        if kind == RESOURCE_VALUE:
            if info is not None and info[1]:
                raise InvalidValue(
                    self.fmt, path, "the resource is multiple-instance", offset=start
                )
            rtype, value = self.value(path, info, start, end)
            return single_trusted(rid, rtype, value)
        if kind == MULTIPLE_RESOURCE:
            return self.multiple(path, info, _split(self.fmt, self.data, start, end, path))
        raise InvalidPayload(
            self.fmt, path, f"a {_KIND_NAMES[kind]} TLV cannot stand here", offset=start
        )

    def multiple(self, path: LwM2MPath, info: ResourceInfo, items: list[_Item]) -> MultipleResource:
        if info is not None and not info[1]:
            raise InvalidValue(self.fmt, path, "the resource is single-instance")
        values: dict[int, Value] = {}
        rtype = ResourceType.OPAQUE if info is None else info[0]
        for kind, ri, start, end in items:
            if kind != RESOURCE_INSTANCE:
                raise InvalidPayload(
                    self.fmt,
                    path,
                    f"a {_KIND_NAMES[kind]} TLV inside a multiple resource",
                    offset=start,
                )
            if ri in values:
                raise InvalidPayload(
                    self.fmt, path, f"resource instance {ri} appears twice", offset=start
                )
            rtype, values[ri] = self.value(path, info, start, end)
        return multiple_trusted(path[2], rtype, values)

    def instance(self, path: LwM2MPath, items: list[_Item]) -> ObjectInstance:
        resources: dict[int, Resource] = {}
        for item in items:
            if item[1] in resources:
                raise InvalidPayload(
                    self.fmt, path, f"resource {item[1]} appears twice", offset=item[2]
                )
            resources[item[1]] = self.resource(path, item)
        return instance_trusted(path[1], resources)


# --- decoding fast path ------------------------------------------------------------------------
# Indexed by value length; None where the length is not a valid width.
_SIGNED_AT: Final = (
    None,
    struct.Struct(">b").unpack_from,
    struct.Struct(">h").unpack_from,
    None,
    struct.Struct(">i").unpack_from,
    None,
    None,
    None,
    struct.Struct(">q").unpack_from,
)
_UNSIGNED_AT: Final = (
    None,
    struct.Struct(">B").unpack_from,
    struct.Struct(">H").unpack_from,
    None,
    struct.Struct(">I").unpack_from,
    None,
    None,
    None,
    struct.Struct(">Q").unpack_from,
)
_FLOAT_AT: Final = (None, None, None, None, _FLOAT32.unpack_from, None, None, None, None)
_OBJLNK_AT: Final = _OBJLNK.unpack_from
_BAIL: Final = object()
_LAYOUTS: Final = "tlv-layouts"


def _plain_value(code: int, data: bytes, start: int, end: int) -> Any:
    """The value of ``data[start:end]`` for a resource of type ``code``; _BAIL when invalid."""
    length = end - start
    if length > 8:
        if code == plans.STRING:
            try:
                return data[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return _BAIL
        return data[start:end] if code == plans.OPAQUE else _BAIL
    try:
        if code == plans.STRING:
            return data[start:end].decode("utf-8")
        if code == plans.INTEGER:
            unpack = _SIGNED_AT[length]
            return _BAIL if unpack is None else unpack(data, start)[0]
        if code == plans.TIME:
            unpack = _SIGNED_AT[length]
            return _BAIL if unpack is None else seconds_to_time(unpack(data, start)[0])
        if code == plans.OBJLNK:
            return link_from_ids(*_OBJLNK_AT(data, start)) if length == 4 else _BAIL
        if code == plans.UNSIGNED:
            unpack = _UNSIGNED_AT[length]
            return _BAIL if unpack is None else unpack(data, start)[0]
        if code == plans.FLOAT:
            if length == 8:
                return _FLOAT64.unpack_from(data, start)[0]
            unpack = _FLOAT_AT[length]
            return _BAIL if unpack is None else unpack(data, start)[0]
        if code == plans.BOOLEAN:
            return (data[start] == 1) if length == 1 and data[start] <= 1 else _BAIL
        if code == plans.OPAQUE:
            return data[start:end]
    except (UnicodeDecodeError, InvalidValue):
        pass
    return _BAIL


def _instance_plain(
    data: bytes, pos: int, end: int, iid: int, plan: plans.ObjectPlan
) -> ObjectInstance | None:
    """The resource TLVs in ``data[pos:end]`` as an instance, or None to leave it to _Decoder.

    Takes well-formed TLVs of resources the model defines, with their defined multiplicity
    and valid values, and gives up on anything else: _Decoder then decides and reports.
    """
    values: dict[int, object] = {}
    codes = plan.codes
    signed = _SIGNED_AT
    try:
        while pos < end:
            first = data[pos]
            if first & 0x20:
                rid = data[pos + 1] << 8 | data[pos + 2]
                p = pos + 3
            else:
                rid = data[pos + 1]
                p = pos + 2
            width = first & 0x18
            if not width:
                pos = p + (first & 0x07)
            elif width == 0x08:
                pos = p + 1 + data[p]
                p += 1
            else:
                return None
            code = codes.get(rid)
            if pos > end or code is None or rid in values:
                return None
            if first >= 0xC0:
                if code == plans.STRING:
                    values[rid] = data[p:pos].decode("utf-8")
                elif code == plans.INTEGER and 0 < pos - p < 3:
                    values[rid] = signed[pos - p](data, p)[0]  # type: ignore[misc]
                else:
                    value = _plain_value(code, data, p, pos)
                    if value is _BAIL or code >= plans.MULTIPLE:
                        return None
                    values[rid] = value
                continue
            if not 0x80 <= first < 0xC0 or code < plans.MULTIPLE:
                return None
            code -= plans.MULTIPLE
            instances: dict[int, Value] = {}
            while p < pos:
                first = data[p]
                if first & 0x20:
                    ri = data[p + 1] << 8 | data[p + 2]
                    start = p + 3
                else:
                    ri = data[p + 1]
                    start = p + 2
                width = first & 0x18
                if not width:
                    p = start + (first & 0x07)
                elif width == 0x08:
                    p = start + 1 + data[start]
                    start += 1
                else:
                    return None
                if p > pos or not 0x40 <= first < 0x80 or ri in instances:
                    return None
                if code == plans.INTEGER and 0 < p - start < 3:
                    instances[ri] = signed[p - start](data, start)[0]  # type: ignore[misc]
                else:
                    value = _plain_value(code, data, start, p)
                    if value is _BAIL:
                        return None
                    instances[ri] = value
            values[rid] = instances
    except (IndexError, UnicodeDecodeError):
        return None
    return instance_from_values(iid, values, plan.rtypes)


# --- decoding known layouts ---------------------------------------------------------------------
# Walking the TLV headers byte by byte is most of what decoding costs, and a device answers the
# reads of one object with payloads of the same layout (the same resources, value lengths and so
# headers) most of the time. A layout the fast path has accepted is therefore kept, keyed by the
# payload size, as two structs: one reading every header byte (skipping values), compared with
# the recorded header bytes, and one reading every value (skipping headers). Equal header bytes
# at equal offsets in a payload of equal size mean the same parse, hence the same structural
# checks; only the values are new, and they are checked as they are converted.
_VALUE_FIELDS: Final = {
    plans.INTEGER: {1: "b", 2: "h", 4: "i", 8: "q"},
    plans.TIME: {1: "b", 2: "h", 4: "i", 8: "q"},
    plans.UNSIGNED: {1: "B", 2: "H", 4: "I", 8: "Q"},
    plans.FLOAT: {4: "f", 8: "d"},
    plans.BOOLEAN: {1: "B"},
    plans.OBJLNK: {4: "HH"},
}
# (resource id, type code, index of the value field, None) for a single resource;
# (resource id, type code, -1, ((resource instance id, field index), ...)) for a multiple one.
_Step = tuple[int, int, int, "tuple[tuple[int, int], ...] | None"]


class _Layout:
    __slots__ = ("expected", "headers", "steps", "values")

    def __init__(
        self, headers: str, expected: tuple[int, ...], values: str, steps: tuple[_Step, ...]
    ) -> None:
        self.headers = struct.Struct(headers).unpack
        self.expected = expected
        self.values = struct.Struct(values).unpack
        self.steps = steps


def _record_layout(data: bytes, codes: dict[int, int]) -> _Layout:
    """The layout of an instance payload that :func:`_instance_plain` has accepted."""
    header_format = [">"]
    value_format = [">"]
    expected: list[int] = []
    steps: list[_Step] = []
    fields = 0

    def header(pos: int) -> tuple[int, int, int]:
        """(identifier, value start, value end); the fast path took 1-byte lengths at most."""
        first = data[pos]
        if first & 0x20:
            ident, start = data[pos + 1] << 8 | data[pos + 2], pos + 3
        else:
            ident, start = data[pos + 1], pos + 2
        if first & 0x18:
            length, start = data[start], start + 1
        else:
            length = first & 0x07
        header_format.append("B" * (start - pos))
        value_format.append(f"{start - pos}x")
        expected.extend(data[pos:start])
        return ident, start, start + length

    def value(code: int, length: int) -> int:
        nonlocal fields
        header_format.append(f"{length}x")
        widths = _VALUE_FIELDS.get(code)
        value_format.append(f"{length}s" if widths is None else widths[length])
        fields += 2 if code == plans.OBJLNK else 1
        return fields - (2 if code == plans.OBJLNK else 1)

    pos = 0
    while pos < len(data):
        rid, start, pos = header(pos)
        code = codes[rid]
        if code < plans.MULTIPLE:
            steps.append((rid, code, value(code, pos - start), None))
            continue
        code -= plans.MULTIPLE
        instances = []
        while start < pos:
            ri, value_start, start = header(start)
            instances.append((ri, value(code, start - value_start)))
        steps.append((rid, code, -1, tuple(instances)))
    return _Layout("".join(header_format), tuple(expected), "".join(value_format), tuple(steps))


def _layout_value(code: int, fields: tuple[Any, ...], index: int) -> Any:
    """The value of field ``index`` (already a valid width) for type ``code``; _BAIL if invalid."""
    raw = fields[index]
    if code == plans.STRING:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return _BAIL
    if code == plans.TIME:
        try:
            return seconds_to_time(raw)
        except InvalidValue:
            return _BAIL
    if code == plans.OBJLNK:
        return link_from_ids(raw, fields[index + 1])
    if code == plans.BOOLEAN:
        return _BAIL if raw > 1 else raw == 1
    return raw  # integers, floats, opaque bytes


def _instance_from_layout(
    layout: _Layout, data: bytes, iid: int, plan: plans.ObjectPlan
) -> ObjectInstance | None:
    if layout.headers(data) != layout.expected:
        return None
    fields = layout.values(data)
    values: dict[int, object] = {}
    for rid, code, index, instances in layout.steps:
        if instances is None:
            if code == plans.INTEGER:
                values[rid] = fields[index]
                continue
            if code == plans.STRING:
                try:
                    values[rid] = fields[index].decode("utf-8")
                except UnicodeDecodeError:
                    return None
                continue
            value = _layout_value(code, fields, index)
            if value is _BAIL:
                return None
            values[rid] = value
            continue
        converted: dict[int, Value] = {}
        for ri, index in instances:
            value = fields[index] if code == plans.INTEGER else _layout_value(code, fields, index)
            if value is _BAIL:
                return None
            converted[ri] = value
        values[rid] = converted
    return instance_from_values(iid, values, plan.rtypes)


def _decode_instance(payload: bytes, iid: int, plan: plans.ObjectPlan) -> ObjectInstance | None:
    """An instance payload through the fast paths, or None to leave it to _Decoder."""
    layouts: plans.LayoutCache[_Layout] | None = plan.scratch.get(_LAYOUTS)
    if layouts is None:
        layouts = plan.scratch[_LAYOUTS] = plans.LayoutCache()
    layout = layouts.by_size.get(len(payload))
    if layout is not None:
        found = _instance_from_layout(layout, payload, iid, plan)
        if found is not None:
            layouts.misses = 0
            return found
    plain = _instance_plain(payload, 0, len(payload), iid, plan)
    if plain is not None and layouts.should_record():
        layouts.store(len(payload), _record_layout(payload, plan.codes))
    return plain


def decode_tlv(fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    if not path:
        raise UnsupportedFormat(fmt, path, "TLV cannot carry the root")
    if len(path) == 2:
        plan = plans.object_plan(model, path[0])
        if plan is not None:
            plain = _decode_instance(payload, path[1], plan)
            if plain is not None:
                return plain
    decoder = _Decoder(fmt, payload, model)
    items = _split(fmt, payload, 0, len(payload), path)
    depth = len(path)
    if depth == 1:
        instances: dict[int, ObjectInstance] = {}
        for kind, iid, start, end in items:
            if kind != OBJECT_INSTANCE:
                raise InvalidPayload(
                    fmt,
                    path,
                    f"expected object instance TLVs, found a {_KIND_NAMES[kind]}",
                    offset=start,
                )
            if iid in instances:
                raise InvalidPayload(fmt, path, f"instance {iid} appears twice", offset=start)
            instance_path = path_from_trusted_ids((path[0], iid))
            instances[iid] = decoder.instance(
                instance_path, _split(fmt, payload, start, end, instance_path)
            )
        return object_trusted(path[0], instances)
    if depth == 2:
        if len(items) == 1 and items[0][0] == OBJECT_INSTANCE:
            # A Write may wrap the resources in one object instance TLV.
            _, iid, start, end = items[0]
            if iid != path[1]:
                raise PathNotAllowed(fmt, path, f"the payload holds instance {iid}", offset=0)
            items = _split(fmt, payload, start, end, path)
        return decoder.instance(path, items)
    info = decoder.mapper.info(path)
    if depth == 3:
        if len(items) == 1 and items[0][0] in (RESOURCE_VALUE, MULTIPLE_RESOURCE):
            if items[0][1] != path[2]:
                raise PathNotAllowed(
                    fmt, path, f"the payload holds resource {items[0][1]}", offset=0
                )
            return decoder.resource(path.parent, items[0])
        if all(item[0] == RESOURCE_INSTANCE for item in items):
            if not items and info is None:
                raise InvalidPayload(fmt, path, "empty payload")
            return decoder.multiple(path, info, items)
        raise InvalidPayload(
            fmt, path, "expected one resource TLV or resource instance TLVs", offset=0
        )
    if len(items) != 1 or items[0][0] not in (RESOURCE_INSTANCE, RESOURCE_VALUE):
        raise InvalidPayload(fmt, path, "expected exactly one resource instance TLV", offset=0)
    _, ri, start, end = items[0]
    if ri != path[3]:
        raise PathNotAllowed(fmt, path, f"the payload holds resource instance {ri}", offset=0)
    if info is not None and not info[1]:
        raise InvalidValue(fmt, path, "the resource is single-instance")
    rtype, value = decoder.value(path, info, start, end)
    return resource_instance_trusted(ri, rtype, value)


def decode_tlv_create(
    fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None, free_id: int
) -> Node:
    """The object at ``path`` a Create carries: object instance TLVs name their instances;
    resource TLVs at the top level leave the id to the client, and stand in ``free_id``."""
    items = _split(fmt, payload, 0, len(payload), path)
    kinds = {item[0] for item in items}
    if OBJECT_INSTANCE in kinds or not items:
        if len(kinds) > 1:
            raise InvalidPayload(
                fmt, path, "object instance TLVs mixed with resource TLVs", offset=0
            )
        return decode_tlv(fmt, payload, path, model)
    instance = decode_tlv(fmt, payload, path_from_trusted_ids((path[0], free_id)), model)
    return object_trusted(path[0], {free_id: instance})  # type: ignore[dict-item]
