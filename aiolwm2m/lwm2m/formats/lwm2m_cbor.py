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

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import InvalidPayload, InvalidValue, PathNotAllowed
from ..model.registry import ModelRegistry
from ..nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
    instance_trusted,
    multiple_trusted,
    node_matches_path,
)
from ..path import MAX_ID, LwM2MPath, path_from_trusted_ids
from ..values import ObjectLink, ResourceType, Value, time_to_seconds
from .cbor_support import ShortFloat, dump, kind_of, load_one
from .content_format import ContentFormat
from .tree_assembly import Leaf, assemble, group_leaves
from .value_mapping import STRING_OBJLNK, ValueMapper

__all__ = [
    "decode_lwm2m_cbor",
    "decode_lwm2m_cbor_composite",
    "encode_lwm2m_cbor",
    "encode_lwm2m_cbor_composite",
]

_FMT = ContentFormat.LWM2M_CBOR
_new_tuple = tuple.__new__


# --- decoding ------------------------------------------------------------------------------------
def _key_ids(key: object, prefix: tuple[int, ...]) -> tuple[int, ...]:
    if type(key) is int:
        ids: tuple[Any, ...] = (key,)
    elif type(key) is tuple and key:
        ids = key
    else:
        raise InvalidPayload(
            _FMT, _show(prefix), f"map key {key!r} is neither an id nor an id array"
        )
    full = prefix + ids
    if len(full) > 4:
        raise InvalidPayload(_FMT, _show(prefix), f"path {list(full)} is deeper than 4 levels")
    for position, value in enumerate(full[len(prefix) :], start=len(prefix)):
        if (
            type(value) is not int
            or not 0 <= value <= MAX_ID
            or (position == 1 and value == MAX_ID)
        ):
            raise InvalidPayload(_FMT, _show(prefix), f"{value!r} is not a valid id")
    return full


def _show(ids: tuple[int, ...]) -> str:
    return "/" + "/".join(map(str, ids))


def _walk(
    mapping: dict[Any, Any], prefix: tuple[int, ...], out: list[tuple[LwM2MPath, Any]]
) -> None:
    for key, value in mapping.items():
        full = _key_ids(key, prefix)
        if type(value) is dict:
            _walk(value, full, out)
        else:
            if len(full) < 3:
                raise InvalidPayload(
                    _FMT, _show(full), "a value must stand at a resource or resource instance"
                )
            out.append((path_from_trusted_ids(full), value))


def _leaves(payload: bytes, model: ModelRegistry | None) -> list[Leaf]:
    document = load_one(_FMT, payload)
    if type(document) is not dict:
        raise InvalidPayload(_FMT, None, "an LwM2M CBOR document is a map")
    flat: list[tuple[LwM2MPath, Any]] = []
    try:
        _walk(document, (), flat)
    except RecursionError:
        raise InvalidPayload(_FMT, None, "maps nested too deep") from None
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

    Returns None for any other shape, which then takes the general path.
    """
    if len(document) != 1:
        return None
    ((key, body),) = document.items()
    if key != tuple(path) or type(body) is not dict:
        return None
    mapper = ValueMapper(_FMT, model, STRING_OBJLNK)
    oid = path[0]
    resources: dict[int, Resource] = {}
    for rid, raw in body.items():
        if type(rid) is not int or not 0 <= rid <= MAX_ID:
            return None
        rpath = path_from_trusted_ids((oid, path[1], rid))
        if type(raw) is dict:
            values: dict[int, Value] = {}
            rtype: ResourceType | None = None
            info = mapper.info(rpath)
            if info is not None and not info[1]:
                raise InvalidValue(_FMT, rpath, "the resource is single-instance")
            for ri, item in raw.items():
                if type(item) is dict or type(ri) is not int or not 0 <= ri <= MAX_ID:
                    return None
                kind = kind_of(item)
                if kind is None:
                    raise InvalidValue(
                        _FMT, rpath, f"a CBOR {type(item).__name__} is not an LwM2M value"
                    )
                rtype, values[ri], _ = mapper.convert(rpath, kind, item)
            if rtype is None:
                if info is None:
                    return None
                rtype = info[0]
            resources[rid] = multiple_trusted(rid, rtype, values)
            continue
        kind = kind_of(raw)
        if kind is None:
            raise InvalidValue(_FMT, rpath, f"a CBOR {type(raw).__name__} is not an LwM2M value")
        rtype, value, info = mapper.convert(rpath, kind, raw)
        if info is not None and info[1]:
            raise InvalidValue(
                _FMT, rpath, "the resource is multiple-instance: values need an instance id"
            )
        resources[rid] = _new_tuple(SingleResource, (rid, rtype, value))
    return instance_trusted(path[1], resources)


def decode_lwm2m_cbor(payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    if len(path) == 2:
        document = load_one(_FMT, payload)
        if type(document) is dict:
            fast = _instance_fast(document, path, model)
            if fast is not None:
                return fast
    leaves = _leaves(payload, model)
    base_info = ValueMapper(_FMT, model).info(path) if len(path) >= 3 else None
    return assemble(_FMT, path, leaves, base_info)


def decode_lwm2m_cbor_composite(
    payload: bytes, paths: list[LwM2MPath] | None, model: ModelRegistry | None
) -> dict[LwM2MPath, Node]:
    return group_leaves(_FMT, _leaves(payload, model), paths)


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
    raise InvalidValue(_FMT, path, f"cannot encode {value!r} as {rtype.value}")


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


def encode_lwm2m_cbor(path: LwM2MPath, node: Node) -> bytes:
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
