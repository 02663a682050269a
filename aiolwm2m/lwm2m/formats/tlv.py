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

import struct
from collections.abc import Callable
from typing import Final

from ..errors import InvalidPayload, InvalidValue, PathNotAllowed, UnsupportedFormat
from ..model.registry import ModelRegistry
from ..nodes import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
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
    seconds_to_time,
    time_to_seconds,
)
from .value_mapping import ResourceInfo, ValueMapper

__all__ = ["decode_tlv", "encode_tlv"]

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
                self.fmt, path, f"cannot encode {value!r} as {rtype.value}: {exc}"
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


def encode_tlv(fmt: int, path: LwM2MPath, node: Node) -> bytes:
    problem = node_matches_path(path, node)
    if problem is not None:
        raise PathNotAllowed(fmt, path, problem)
    encoder = _Encoder(fmt)
    try:
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


def decode_tlv(fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    if not path:
        raise UnsupportedFormat(fmt, path, "TLV cannot carry the root")
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
