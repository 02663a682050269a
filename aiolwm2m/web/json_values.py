"""Typed LwM2M values in the REST API's JSON, both ways.

JSON has no bytes, so an Opaque value travels as an object with one member that names its
encoding: ``{"base64": "QU4="}``. Reads, events and composite results always use that form;
Write, Create and Write-Composite bodies take it too, and also ``{"hex": "414e"}``. Object
and instance ids are numbers, so such an object can never be taken for
``{instance id: value}``. A bare string for a resource the model types as Opaque is refused
rather than guessed at (is "414e" two bytes of hex, or three of base64?).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from aiolwm2m.lwm2m import LwM2MPath, ModelRegistry
from aiolwm2m.lwm2m.node_builder import plain_value
from aiolwm2m.lwm2m.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
)
from aiolwm2m.lwm2m.values import ResourceType, Value

BASE64 = "base64"
HEX = "hex"
_ENCODINGS = (BASE64, HEX)
OPAQUE_HINT = '{"base64": "..."} (or {"hex": "..."})'


class OpaqueJsonError(ValueError):
    """An Opaque value in a request body that cannot be decoded; the message says why."""


# -- reads: values to JSON ---------------------------------------------------------------------


def json_scalar(value: Value) -> Any:
    """One typed value as JSON: Opaque as ``{"base64": ...}``, times as epoch seconds,
    object links as ``"3:0"``."""
    if isinstance(value, bytes):
        return {BASE64: base64.b64encode(value).decode("ascii")}
    return plain_value(value)


def node_content(node: Node) -> Any:
    """A node as JSON: ``{id: ...}`` objects with string keys down to the scalars."""
    if isinstance(node, SingleResource | ResourceInstance):
        return json_scalar(node.value)
    if isinstance(node, MultipleResource):
        return {str(k): json_scalar(v) for k, v in node.instances.items()}
    if isinstance(node, ObjectInstance):
        return {str(k): node_content(r) for k, r in node.resources.items()}
    return {str(k): node_content(i) for k, i in node.instances.items()}


# -- writes: JSON to values --------------------------------------------------------------------


def is_opaque_json(value: object) -> bool:
    return isinstance(value, Mapping) and any(k in value for k in _ENCODINGS)


def decode_opaque_json(path: LwM2MPath, value: Mapping[str, Any]) -> bytes:
    if len(value) != 1:
        raise OpaqueJsonError(f"{path}: an Opaque value is {OPAQUE_HINT} with no other member")
    encoding, text = next(iter(value.items()))
    if not isinstance(text, str):
        raise OpaqueJsonError(f"{path}: the {encoding} of an Opaque value must be a string")
    try:
        if encoding == HEX:
            return bytes.fromhex(text)
        # Either alphabet (they differ in two characters only) and optional padding.
        standard = text.replace("-", "+").replace("_", "/")
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise OpaqueJsonError(f"{path}: the Opaque value is not valid {encoding}") from None


def _leaf(model: ModelRegistry, path: LwM2MPath, value: Any) -> Any:
    if is_opaque_json(value):
        return decode_opaque_json(path, value)
    if isinstance(value, str):
        rm = model.resource(path[0], path[2])
        if rm is not None and rm.type is ResourceType.OPAQUE:
            raise OpaqueJsonError(f"{path} is Opaque: send its bytes as {OPAQUE_HINT}")
    return value


def _child(path: LwM2MPath, key: object) -> LwM2MPath | None:
    if isinstance(key, int) and not isinstance(key, bool):
        number = key
    elif isinstance(key, str) and key.isascii() and key.isdigit():
        number = int(key)
    else:
        return None  # build_node names the bad id
    try:
        return path.child(number)
    except ValueError:
        return None


def _resource(model: ModelRegistry, path: LwM2MPath, value: Any) -> Any:
    if isinstance(value, list):
        children = [_child(path, i) for i in range(len(value))]
        return [v if c is None else _leaf(model, c, v) for c, v in zip(children, value,
                                                                        strict=True)]
    if isinstance(value, Mapping) and not is_opaque_json(value):
        return _mapping(value, path, _leaf, model)
    return _leaf(model, path, value)


def _mapping(value: Any, path: LwM2MPath, below: Callable[[ModelRegistry, LwM2MPath, Any], Any],
             model: ModelRegistry) -> Any:
    if not isinstance(value, Mapping):
        return value  # build_node says what shape was expected
    out = {}
    for key, v in value.items():
        child = _child(path, key)
        out[key] = v if child is None else below(model, child, v)
    return out


def _instance(model: ModelRegistry, path: LwM2MPath, value: Any) -> Any:
    return _mapping(value, path, _resource, model)


def _object(model: ModelRegistry, path: LwM2MPath, value: Any) -> Any:
    return _mapping(value, path, _instance, model)


def opaque_from_json(model: ModelRegistry, path: LwM2MPath, value: Any) -> Any:
    """``value`` (the JSON for the node at ``path``) with its Opaque values as bytes, ready
    for :func:`~aiolwm2m.lwm2m.node_builder.build_node`; :class:`OpaqueJsonError` for an
    undecodable one or a bare string where the model says Opaque."""
    depth = len(path)
    if depth == 4:
        return _leaf(model, path, value)
    if depth == 3:
        return _resource(model, path, value)
    if depth == 2:
        return _instance(model, path, value)
    if depth == 1:
        return _object(model, path, value)
    return value
