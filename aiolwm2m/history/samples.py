"""One value of one resource of one device at one time, and how nodes become samples.

A sample's value is stored plain, in a form any store can keep: ``int``, ``float``,
``bool``, ``str``, or ``bytes`` for Opaque; a Time as its epoch seconds (``int``), an
Objlnk as its text ``"3:0"``. ``type`` keeps the LwM2M type name, so a reader can tell a
Time from an Integer and give a Boolean back as ``bool``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, NamedTuple

from aiolwm2m.lwm2m.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
)
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.lwm2m.values import ObjectLink, ResourceType, Value

#: What a sample's value is stored as.
PlainValue = int | float | bool | str | bytes

#: Where a value came from: the answer to a Read (or Read-Composite), an Observe's first
#: answer or a notification, or a Send.
READ: Final = "read"
OBSERVE: Final = "observe"
SEND: Final = "send"
SOURCES: Final = (READ, OBSERVE, SEND)


class ValueSample(NamedTuple):
    """A tuple, in the column order of the SQLite store's rows: made by the thousand."""

    endpoint: str
    #: A resource or resource-instance path, ``/3/0/9`` or ``/3/0/7/1``.
    path: str
    #: Seconds since the epoch when the value held: the device's own time when it gave one
    #: (Send, timestamped notifications), else when the server received it.
    time: float
    #: The LwM2M type name (``ResourceType`` value: "Integer", "Opaque", "Time"...).
    type: str
    value: PlainValue
    source: str
    #: Order of recording, assigned by the store (ties in ``time`` keep this order).
    seq: int = 0


#: One value as a response carries it: (path, type name, plain value).
PathValue = tuple[str, str, PlainValue]


_AS_IS = frozenset({int, float, str, bool, bytes})
_TYPE_NAMES = {t: t.value for t in ResourceType}


def plain(value: Value) -> PlainValue:
    if type(value) in _AS_IS:
        return value  # type: ignore[return-value]
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, ObjectLink):
        return str(value)
    return value


def typed_from_store(rtype: str, value: object) -> PlainValue:
    """A value as a store gives it back (SQLite keeps a Boolean as 0/1)."""
    if rtype == ResourceType.BOOLEAN.value and isinstance(value, int):
        return bool(value)
    assert isinstance(value, int | float | str | bytes)
    return value


def value_size(value: PlainValue) -> int:
    return len(value) if type(value) is str or type(value) is bytes else 8


def path_prefix(path: LwM2MPath) -> str:
    return str(path) if path else ""


def node_values(path: LwM2MPath, node: Node) -> list[PathValue]:
    """``(path, type name, plain value)`` of every value under ``node`` (at ``path``)."""
    out: list[PathValue] = []
    _walk(node, path_prefix(path), out)
    return out


def _walk(node: Node, path: str, out: list[PathValue]) -> None:
    # Exact classes, a dict of type names, the usual case inline: this runs for every value
    # a device reports.
    kind = type(node)
    if kind is ObjectInstance:
        instance: Any = node
        prefix = path + "/"
        for rid, resource in instance.resources.items():
            if type(resource) is SingleResource:
                value: Any = resource.value
                out.append((prefix + str(rid), _TYPE_NAMES[resource.type],
                            value if type(value) in _AS_IS else plain(value)))
            else:
                _walk(resource, prefix + str(rid), out)
    elif kind is SingleResource or kind is ResourceInstance:
        leaf: Any = node
        out.append((path, _TYPE_NAMES[leaf.type], plain(leaf.value)))
    elif kind is MultipleResource:
        multiple: Any = node
        rtype = _TYPE_NAMES[multiple.type]
        prefix = path + "/"
        for ri, value in multiple.instances.items():
            out.append((prefix + str(ri), rtype, plain(value)))
    else:
        obj: Any = node
        for iid, child in obj.instances.items():
            _walk(child, f"{path}/{iid}", out)


def under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it (``/3/0/1`` is under ``/3/0``, ``/3/01``
    is not); every path is under ``""`` and ``"/"``."""
    if prefix in ("", "/"):
        return True
    return path == prefix or path.startswith(prefix + "/")


def prefix_range(prefix: str) -> tuple[str, str] | None:
    """The string range ``[low, high)`` of the paths strictly below ``prefix`` (None: all).
    ``'/'`` sorts just below ``'0'``, so ``/3/0/`` .. ``/3/00`` holds exactly them."""
    if prefix in ("", "/"):
        return None
    return prefix + "/", prefix + "0"
