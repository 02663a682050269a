"""Formats that carry exactly one value: text/plain (0), opaque (42) and CBOR (60).

They address a single resource or one resource instance; the model gives the type (text and
CBOR fall back to a string or the CBOR item's own kind when it has no definition; opaque is
always OPAQUE).
"""

from __future__ import annotations

import cbor2

from ..errors import InvalidPayload, InvalidValue, UnsupportedFormat, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    Node,
    ResourceInstance,
    SingleResource,
    resource_instance_trusted,
    single_trusted,
)
from ..path import LwM2MPath
from ..values import ObjectLink, ResourceType, Value, from_text, time_to_seconds, to_text
from .cbor_support import ShortFloat, dump, kind_of, load_one
from .content_format import ContentFormat
from .value_mapping import STRING_OBJLNK, ValueMapper

__all__ = [
    "decode_cbor_value",
    "decode_opaque",
    "decode_text",
    "encode_cbor_value",
    "encode_opaque",
    "encode_text",
]

_TEXT = ContentFormat.TEXT
_OPAQUE = ContentFormat.OPAQUE
_CBOR = ContentFormat.CBOR


def _leaf(fmt: int, path: LwM2MPath, node: Node) -> SingleResource | ResourceInstance:
    if type(node) is SingleResource or type(node) is ResourceInstance:
        return node
    raise UnsupportedFormat(
        fmt,
        path,
        f"only a single resource or a resource instance fits, not a {type(node).__name__}",
    )


def _target_type(fmt: int, path: LwM2MPath, model: ModelRegistry | None) -> ResourceType | None:
    if len(path) < 3:
        raise UnsupportedFormat(fmt, path, f"cannot carry a whole {path.level_name}")
    info = ValueMapper(fmt, model).info(path)
    if info is None:
        return None
    rtype, multiple = info
    if multiple and len(path) == 3:
        raise UnsupportedFormat(fmt, path, "cannot carry a multiple-instance resource")
    if rtype is ResourceType.NONE:
        raise InvalidValue(fmt, path, "the resource is executable and carries no value")
    return rtype


def _build(path: LwM2MPath, rtype: ResourceType, value: Value) -> Node:
    if len(path) == 3:
        return single_trusted(path[2], rtype, value)
    return resource_instance_trusted(path[3], rtype, value)


# --- text/plain --------------------------------------------------------------------------------
def encode_text(path: LwM2MPath, node: Node) -> bytes:
    leaf = _leaf(_TEXT, path, node)
    try:
        return to_text(leaf.type, leaf.value).encode("utf-8")
    except InvalidValue as exc:
        raise InvalidValue(_TEXT, path, exc.reason) from None


def decode_text(payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    defined = _target_type(_TEXT, path, model)
    rtype = defined or ResourceType.STRING
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        if defined is None:  # a resource the model does not know: keep the bytes as they are
            return _build(path, ResourceType.OPAQUE, bytes(payload))
        raise InvalidPayload(_TEXT, path, "not UTF-8 text", offset=exc.start) from None
    try:
        value = from_text(rtype, text)
    except InvalidValue as exc:
        raise InvalidValue(_TEXT, path, exc.reason) from None
    return _build(path, rtype, value)


# --- opaque ------------------------------------------------------------------------------------
def encode_opaque(path: LwM2MPath, node: Node) -> bytes:
    leaf = _leaf(_OPAQUE, path, node)
    if leaf.type is not ResourceType.OPAQUE:
        raise UnsupportedFormat(_OPAQUE, path, f"carries Opaque values only, not {leaf.type.value}")
    return bytes(leaf.value)  # type: ignore[arg-type]


def decode_opaque(payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    rtype = _target_type(_OPAQUE, path, model)
    if rtype is not None and rtype is not ResourceType.OPAQUE:
        raise UnsupportedFormat(_OPAQUE, path, f"carries Opaque values only, not {rtype.value}")
    return _build(path, ResourceType.OPAQUE, bytes(payload))


# --- CBOR (one data item) ------------------------------------------------------------------------
def cbor_item(rtype: ResourceType, value: Value) -> object:
    """The CBOR item for one typed value (used by the CBOR and LwM2M CBOR encoders)."""
    if rtype is ResourceType.FLOAT:
        return ShortFloat(value)  # type: ignore[arg-type]
    if rtype is ResourceType.TIME:
        return cbor2.CBORTag(1, time_to_seconds(value))  # type: ignore[arg-type]
    if rtype is ResourceType.OBJLNK:
        return str(value)
    if type(value) is ObjectLink:
        raise ValueError("object link value for a non-Objlnk resource")
    return value


def encode_cbor_value(path: LwM2MPath, node: Node) -> bytes:
    leaf = _leaf(_CBOR, path, node)
    try:
        return dump(cbor_item(leaf.type, leaf.value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidValue(_CBOR, path, f"cannot encode {shown(leaf.value)}: {exc}") from None


def decode_cbor_value(payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    _target_type(_CBOR, path, model)
    raw = load_one(_CBOR, payload)
    kind = kind_of(raw)
    if kind is None:
        raise InvalidValue(_CBOR, path, f"a CBOR {type(raw).__name__} is not an LwM2M value")
    rtype, value, _ = ValueMapper(_CBOR, model, STRING_OBJLNK).convert(path, kind, raw)
    return _build(path, rtype, value)
