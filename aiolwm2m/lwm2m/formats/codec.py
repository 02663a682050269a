"""The public encode/decode entry points, dispatching on the content format number.

=================  ======  =========  ==========  =============  =========
format             node    composite  timestamps  path lists     levels
=================  ======  =========  ==========  =============  =========
0 text/plain       yes     no         no          no             r, ri
42 opaque          yes     no         no          no             r, ri (Opaque)
60 CBOR            yes     no         no          no             r, ri
11542/1542 TLV     yes     no         no          no             o, oi, r, ri
11543/1543 JSON    yes     no         yes         no             o, oi, r, ri
110 SenML JSON     yes     yes        yes         yes            o, oi, r, ri
112 SenML CBOR     yes     yes        yes         yes            o, oi, r, ri
11544 LwM2M CBOR   yes     yes        no          no             o, oi, r, ri
40 link format     see :mod:`.link_format` (Discover and Register payloads)
=================  ======  =========  ==========  =============  =========

Every function raises only :class:`~aiolwm2m.lwm2m.errors.CodecError` subclasses on bad
input; an unknown or unfitting format raises :class:`UnsupportedFormat`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from ..errors import PathNotAllowed, UnsupportedFormat, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    Node,
    ObjectInstance,
    SingleResource,
    TimestampedNodes,
    instance_trusted,
    object_trusted,
)
from ..path import LwM2MPath, path_from_trusted_ids
from . import lwm2m_cbor, lwm2m_json, senml, single_value, tlv
from .content_format import ContentFormat

__all__ = [
    "COMPOSITE_FORMATS",
    "SUPPORTED_FORMATS",
    "TIMESTAMPED_FORMATS",
    "decode_composite",
    "decode_create",
    "decode_node",
    "decode_paths",
    "decode_timestamped",
    "encode_composite",
    "encode_create",
    "encode_node",
    "encode_paths",
    "encode_timestamped",
]

CF = ContentFormat
SUPPORTED_FORMATS: Final = frozenset(
    {
        CF.TEXT,
        CF.OPAQUE,
        CF.CBOR,
        CF.TLV,
        CF.OLD_TLV,
        CF.LWM2M_JSON,
        CF.OLD_JSON,
        CF.SENML_JSON,
        CF.SENML_CBOR,
        CF.LWM2M_CBOR,
    }
)
"""Formats :func:`encode_node` and :func:`decode_node` handle (link format has its own API)."""
COMPOSITE_FORMATS: Final = frozenset({CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR})
TIMESTAMPED_FORMATS: Final = frozenset({CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.OLD_JSON})
_SENML: Final = frozenset({CF.SENML_JSON, CF.SENML_CBOR})
_TLV: Final = frozenset({CF.TLV, CF.OLD_TLV})
_JSON: Final = frozenset({CF.LWM2M_JSON, CF.OLD_JSON})


def _as_bytes(payload: bytes | bytearray | memoryview) -> bytes:
    return payload if type(payload) is bytes else bytes(payload)


def _unsupported(fmt: int, path: object, what: str) -> UnsupportedFormat:
    return UnsupportedFormat(
        fmt, path, f"content format {shown(fmt, 12)} is not supported for {what}"
    )


def encode_node(fmt: int, path: LwM2MPath, node: Node, model: ModelRegistry | None = None) -> bytes:
    """Encode the node standing at ``path``.

    Nodes carry their types, so the model is not needed to encode; it is accepted for
    symmetry (and future checks) and ignored today.
    """
    if fmt in _SENML:
        return senml.encode_senml(fmt, path, node)
    if fmt in _TLV:
        return tlv.encode_tlv(fmt, path, node)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.encode_lwm2m_cbor(path, node)
    if fmt in _JSON:
        return lwm2m_json.encode_lwm2m_json(fmt, path, node)
    if fmt == CF.TEXT:
        return single_value.encode_text(path, node)
    if fmt == CF.OPAQUE:
        return single_value.encode_opaque(path, node)
    if fmt == CF.CBOR:
        return single_value.encode_cbor_value(path, node)
    raise _unsupported(fmt, path, "a node")


def decode_node(
    fmt: int,
    payload: bytes | bytearray | memoryview,
    path: LwM2MPath,
    model: ModelRegistry | None = None,
) -> Node:
    """Decode the node at ``path`` (an object, instance, resource or resource instance).

    The model gives types to formats that do not carry them and checks the others; a resource
    it does not define decodes with a type derived from the payload (OPAQUE for TLV).
    """
    data = payload if type(payload) is bytes else bytes(payload)
    if fmt in _SENML:
        return senml.decode_senml(fmt, data, path, model)
    if fmt in _TLV:
        return tlv.decode_tlv(fmt, data, path, model)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.decode_lwm2m_cbor(data, path, model)
    if fmt in _JSON:
        return lwm2m_json.decode_lwm2m_json(fmt, data, path, model)
    if fmt == CF.TEXT:
        return single_value.decode_text(data, path, model)
    if fmt == CF.OPAQUE:
        return single_value.decode_opaque(data, path, model)
    if fmt == CF.CBOR:
        return single_value.decode_cbor_value(data, path, model)
    raise _unsupported(fmt, path, "a node")


def encode_create(fmt: int, path: LwM2MPath, node: Node, *, assign_id: bool = False) -> bytes:
    """The payload of a Create in the object at ``path``.

    ``node`` is an object instance (or an object of several). With ``assign_id`` the
    instance level is left out (TLV: resource TLVs at the top; SenML: names ``/o/r``; LwM2M
    CBOR: ``{o: {r: ...}}``) and the client picks the id; an instance without resources is
    then an empty payload. LwM2M JSON and the single-value formats cannot express that.
    """
    if not assign_id:
        if type(node) is ObjectInstance:
            node = object_trusted(path[0], {node.id: node})
        return encode_node(fmt, path, node)
    if type(node) is not ObjectInstance or len(path) != 1:
        raise PathNotAllowed(fmt, path, "a Create without instance id carries one instance")
    if not node.resources:
        return b""
    if fmt in _TLV:
        return tlv.encode_tlv(fmt, path_from_trusted_ids((path[0], node.id)), node)
    # Values of multiple resources only (/o/r/ri) look like an instance's (/o/i/r) in SenML
    # and LwM2M CBOR, and a client reads them so; a single resource (/o/r) tells.
    if (fmt in _SENML or fmt == CF.LWM2M_CBOR) and not any(
        type(r) is SingleResource for r in node.resources.values()
    ):
        raise UnsupportedFormat(
            fmt, path, "a Create without instance id needs a single-instance resource "
            "in this format (or TLV, or an instance id)"
        )
    if fmt in _SENML:
        return senml.encode_senml_create(fmt, path, node)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.encode_lwm2m_cbor_create(path, node)
    raise _unsupported(fmt, path, "a Create without instance id")


def decode_create(
    fmt: int,
    payload: bytes | bytearray | memoryview,
    path: LwM2MPath,
    model: ModelRegistry | None,
    free_id: int,
) -> Node:
    """The object a Create in ``path`` carries, with its instances by id.

    A payload that leaves the instance id out (see :func:`encode_create`), or an empty one,
    makes one instance with id ``free_id`` (the caller's lowest free id).
    """
    data = _as_bytes(payload)
    if not data:
        return object_trusted(path[0], {free_id: instance_trusted(free_id, {})})
    if fmt in _TLV:
        return tlv.decode_tlv_create(fmt, data, path, model, free_id)
    if fmt in _SENML:
        return senml.decode_senml_create(fmt, data, path, model, free_id)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.decode_lwm2m_cbor_create(data, path, model, free_id)
    return decode_node(fmt, data, path, model)


def encode_composite(
    fmt: int, nodes: Mapping[LwM2MPath, Node], model: ModelRegistry | None = None
) -> bytes:
    """Encode many nodes (Read-Composite response, Write-Composite request, Send)."""
    if fmt in _SENML:
        return senml.encode_senml_composite(fmt, nodes)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.encode_lwm2m_cbor_composite(nodes)
    raise _unsupported(fmt, None, "composite payloads")


def decode_composite(
    fmt: int,
    payload: bytes | bytearray | memoryview,
    paths: Sequence[LwM2MPath] | None = None,
    model: ModelRegistry | None = None,
) -> dict[LwM2MPath, Node]:
    """Decode a composite payload.

    With ``paths`` (the paths of the Read-Composite / Observe-Composite request) the result
    holds the node at each requested path the payload has values for; without, one
    :class:`SingleResource` or :class:`ResourceInstance` per value, keyed by its own path.
    """
    data = _as_bytes(payload)
    wanted = None if paths is None else list(paths)
    if fmt in _SENML:
        return senml.decode_senml_composite(fmt, data, wanted, model)
    if fmt == CF.LWM2M_CBOR:
        return lwm2m_cbor.decode_lwm2m_cbor_composite(data, wanted, model)
    raise _unsupported(fmt, None, "composite payloads")


def decode_timestamped(
    fmt: int,
    payload: bytes | bytearray | memoryview,
    path: LwM2MPath,
    model: ModelRegistry | None = None,
) -> list[TimestampedNodes]:
    """Decode a payload whose values may carry times (notifications, Send).

    Values are grouped by time in payload order. With a non-root ``path`` each group holds the
    node at ``path``; at the root (Send, composite notifications) one node per value. Formats
    without times return one group with ``timestamp=None``.
    """
    data = _as_bytes(payload)
    if fmt in _SENML:
        return senml.decode_senml_timestamped(fmt, data, path, model)
    if fmt in _JSON:
        return lwm2m_json.decode_lwm2m_json_timestamped(fmt, data, path, model)
    if not path:
        return [TimestampedNodes(None, decode_composite(fmt, data, None, model))]
    return [TimestampedNodes(None, {path: decode_node(fmt, data, path, model)})]


def encode_timestamped(
    fmt: int, groups: Iterable[TimestampedNodes], model: ModelRegistry | None = None
) -> bytes:
    """Encode timestamped values (a Send with history, a notification with times)."""
    if fmt in _SENML:
        return senml.encode_senml_timestamped(fmt, groups)
    if fmt in _JSON:
        return lwm2m_json.encode_lwm2m_json_timestamped(fmt, groups)
    raise _unsupported(fmt, None, "timestamped payloads")


def encode_paths(fmt: int, paths: Iterable[LwM2MPath]) -> bytes:
    """A SenML path list, the body of Read-Composite / Observe-Composite (FETCH)."""
    if fmt in _SENML:
        return senml.encode_senml_paths(fmt, paths)
    raise _unsupported(fmt, None, "path lists")


def decode_paths(fmt: int, payload: bytes | bytearray | memoryview) -> list[LwM2MPath]:
    if fmt in _SENML:
        return senml.decode_senml_paths(fmt, _as_bytes(payload))
    raise _unsupported(fmt, None, "path lists")
