"""LwM2M JSON (11543, and the pre-1.0 number 1543), the LwM2M 1.0 JSON format.

``{"bn": "/3/0/", "bt": 1.7e9, "e": [{"n": "0", "sv": "..."}, {"n": "6/0", "v": 1}, ...]}``:
one entry per value, named ``bn`` + ``n``, with exactly one of ``v`` (numbers and times),
``sv`` (strings, core links, and opaque values as base64), ``bv`` (booleans) or ``ov``
(object links ``"oid:iid"``); ``t`` is an entry's time relative to ``bt``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from ..errors import InvalidPath, InvalidPayload, InvalidValue, PathNotAllowed, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    Node,
    ResourceInstance,
    SingleResource,
    TimestampedNodes,
    iter_leaves,
    node_matches_path,
)
from ..path import LwM2MPath
from ..values import ResourceType, Value, time_to_seconds
from .json_unicode import lone_surrogate
from .tree_assembly import Leaf, assemble, group_leaves
from .value_mapping import STRING_OBJLNK, STRING_OPAQUE, Kind, ValueMapper

__all__ = [
    "decode_lwm2m_json",
    "decode_lwm2m_json_timestamped",
    "encode_lwm2m_json",
    "encode_lwm2m_json_timestamped",
]

_VALUE_KINDS: Final = {"v": Kind.NUMBER, "sv": Kind.STRING, "bv": Kind.BOOLEAN, "ov": Kind.OBJLNK}
_ENTRY_KEYS: Final = frozenset({"n", "t", *_VALUE_KINDS})
_TOP_KEYS: Final = frozenset({"bn", "bt", "e"})
_EXTRA: Final = {**STRING_OPAQUE, **STRING_OBJLNK}

# index, path, kind, raw value, time
_Entry = tuple[int, LwM2MPath, int, Any, float]
# Times beyond 2**53 s (the exact integers of a double) are no times, and would overflow
# the float conversions of their users.
_MAX_TIME: Final = 2**53


def _is_time(value: object) -> bool:
    if type(value) is int or type(value) is float:
        return -_MAX_TIME <= value <= _MAX_TIME
    return False


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _entries(fmt: int, payload: bytes) -> list[_Entry]:
    try:
        text = payload.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidPayload(fmt, None, "not UTF-8", offset=exc.start) from None
    except RecursionError:
        raise InvalidPayload(fmt, None, "JSON nesting too deep") from None
    except ValueError as exc:
        raise InvalidPayload(
            fmt, None, f"malformed JSON: {exc}", offset=getattr(exc, "pos", None)
        ) from None
    if lone_surrogate(text, document):
        raise InvalidPayload(fmt, None, "malformed JSON: a string escapes a lone surrogate "
                             "(not Unicode text)")
    if type(document) is not dict:
        raise InvalidPayload(fmt, None, "an LwM2M JSON document is an object")
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise InvalidPayload(fmt, None, f"unknown member(s) {sorted(unknown)}")
    base_name = document.get("bn", "")
    base_time = document.get("bt", 0)
    entries = document.get("e")
    if type(base_name) is not str:
        raise InvalidPayload(fmt, None, "'bn' is not a string")
    if not _is_time(base_time):
        raise InvalidPayload(fmt, None, "'bt' is not a number of seconds")
    if type(entries) is not list:
        raise InvalidPayload(fmt, None, "'e' must be an array of entries")
    out: list[_Entry] = []
    for index, entry in enumerate(entries):
        if type(entry) is not dict:
            raise InvalidPayload(fmt, None, "an entry must be an object", index=index)
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise InvalidPayload(fmt, None, f"unknown member(s) {sorted(unknown)}", index=index)
        value_keys = [key for key in entry if key in _VALUE_KINDS]
        if len(value_keys) != 1:
            reason = "no value" if not value_keys else f"conflicting values {value_keys}"
            raise InvalidPayload(fmt, None, reason, index=index)
        name = entry.get("n", "")
        offset = entry.get("t", 0)
        if type(name) is not str:
            raise InvalidPayload(fmt, None, "'n' is not a string", index=index)
        if not _is_time(offset):
            raise InvalidPayload(fmt, None, "'t' is not a number of seconds", index=index)
        try:
            path = LwM2MPath.parse(base_name + name)
        except InvalidPath as exc:
            raise InvalidPayload(
                fmt, None, f"name {shown(base_name + name, 40)}: {exc.reason}", index=index
            ) from None
        key = value_keys[0]
        kind = _VALUE_KINDS[key]
        raw = entry[key]
        expected = {Kind.NUMBER: (int, float), Kind.BOOLEAN: (bool,)}.get(kind, (str,))
        if type(raw) not in expected:
            raise InvalidPayload(fmt, path, f"{key!r} has the wrong JSON type", index=index)
        if len(path) < 3:
            raise InvalidPayload(
                fmt, path, "a value must name a resource or resource instance", index=index
            )
        out.append((index, path, kind, raw, base_time + offset))
    return out


def _leaves(fmt: int, entries: Iterable[_Entry], model: ModelRegistry | None) -> list[Leaf]:
    convert = ValueMapper(fmt, model, _EXTRA).convert
    leaves: list[Leaf] = []
    for index, path, kind, raw, _ in entries:
        rtype, value, info = convert(path, kind, raw, index)
        leaves.append((path, rtype, value, info, index))
    return leaves


def decode_lwm2m_json(
    fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None
) -> Node:
    leaves = _leaves(fmt, _entries(fmt, payload), model)
    base_info = ValueMapper(fmt, model).info(path) if len(path) >= 3 else None
    return assemble(fmt, path, leaves, base_info)


def decode_lwm2m_json_timestamped(
    fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None
) -> list[TimestampedNodes]:
    groups: list[tuple[float, list[_Entry]]] = []
    for entry in _entries(fmt, payload):
        if groups and groups[-1][0] == entry[4]:
            groups[-1][1].append(entry)
        else:
            groups.append((entry[4], [entry]))
    out: list[TimestampedNodes] = []
    for time, members in groups:
        leaves = _leaves(fmt, members, model)
        nodes = {path: assemble(fmt, path, leaves)} if path else group_leaves(fmt, leaves, None)
        out.append(TimestampedNodes(None if time == 0 else time, nodes))
    return out


# --- encoding ------------------------------------------------------------------------------------
def _entry(
    fmt: int, path: LwM2MPath, name: str, rtype: ResourceType, value: Value
) -> dict[str, Any]:
    try:
        if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
            if type(value) is not str:
                raise ValueError("expected str")
            return {"n": name, "sv": value}
        if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
            if type(value) is not int:
                raise ValueError("expected int")
            return {"n": name, "v": value}
        if rtype is ResourceType.FLOAT:
            if type(value) is not float:
                raise ValueError("expected float")
            return {"n": name, "v": value}
        if rtype is ResourceType.BOOLEAN:
            if type(value) is not bool:
                raise ValueError("expected bool")
            return {"n": name, "bv": value}
        if rtype is ResourceType.OPAQUE:
            return {"n": name, "sv": base64.b64encode(value).decode("ascii")}  # type: ignore[arg-type]
        if rtype is ResourceType.TIME:
            return {"n": name, "v": time_to_seconds(value)}  # type: ignore[arg-type]
        if rtype is ResourceType.OBJLNK:
            return {"n": name, "ov": str(value)}
        raise ValueError("executable resources carry no value")
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidValue(fmt, path, f"cannot encode {shown(value)}: {exc}") from None


def _dump(fmt: int, document: dict[str, Any]) -> bytes:
    try:
        return json.dumps(
            document, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except ValueError as exc:
        raise InvalidValue(fmt, None, f"not representable in JSON: {exc}") from None


def encode_lwm2m_json(fmt: int, path: LwM2MPath, node: Node) -> bytes:
    problem = node_matches_path(path, node)
    if problem is not None:
        raise PathNotAllowed(fmt, path, problem)
    # Leaves are named relative to their parent; containers relative to themselves.
    base = path.parent if type(node) is SingleResource or type(node) is ResourceInstance else path
    prefix = "/" if not base else str(base) + "/"
    skip = len(base)
    entries = [
        _entry(fmt, leaf_path, "/".join(map(str, leaf_path[skip:])), rtype, value)
        for leaf_path, rtype, value in iter_leaves(path, node)
    ]
    return _dump(fmt, {"bn": prefix, "e": entries})


def _absolute(fmt: int, nodes: Mapping[LwM2MPath, Node]) -> Iterator[dict[str, Any]]:
    for path, node in nodes.items():
        problem = node_matches_path(path, node)
        if problem is not None:
            raise PathNotAllowed(fmt, path, problem)
        for leaf_path, rtype, value in iter_leaves(path, node):
            yield _entry(fmt, leaf_path, str(leaf_path), rtype, value)


def encode_lwm2m_json_timestamped(fmt: int, groups: Iterable[TimestampedNodes]) -> bytes:
    groups = list(groups)
    times = [g.timestamp for g in groups if g.timestamp is not None]
    base_time = min(times) if times else None
    entries: list[dict[str, Any]] = []
    for group in groups:
        for entry in _absolute(fmt, group.nodes):
            if (
                group.timestamp is not None
                and base_time is not None
                and group.timestamp != base_time
            ):
                entry["t"] = group.timestamp - base_time
            elif group.timestamp is None and base_time is not None:
                entry["t"] = -base_time
            entries.append(entry)
    document: dict[str, Any] = {"e": entries}
    if base_time is not None:
        document = {"bt": base_time, "e": entries}
    return _dump(fmt, document)
