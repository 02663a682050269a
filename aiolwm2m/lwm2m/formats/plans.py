"""Per-object resource tables for the codecs' fast paths.

The fast paths decode the common shapes (an object instance read) in one tight loop and hand
anything unusual to the general code, which reports errors. What they need of the model for
one resource is its type and multiplicity, found with a single dict lookup per resource: an
:data:`ObjectPlan` maps resource id -> ``(type, code)``, where ``code`` is a small int naming
the type (branching on ints is much cheaper than comparing enum members) with
:data:`MULTIPLE` added for multiple-instance resources. Plans are cached per model and
rebuilt when the model changes.
"""

from __future__ import annotations

from typing import Any, Final, Generic, NamedTuple, TypeVar

from ..errors import InvalidValue
from ..model.registry import ModelRegistry
from ..values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    ResourceType,
    link_from_text,
    seconds_to_time,
)
from .value_mapping import b64url_decode

__all__ = [
    "BOOLEAN",
    "FLOAT",
    "INTEGER",
    "MULTIPLE",
    "NO_VALUE",
    "OBJLNK",
    "OPAQUE",
    "STRING",
    "TIME",
    "TYPE_CODES",
    "UNSIGNED",
    "LayoutCache",
    "ObjectPlan",
    "object_plan",
]

STRING: Final = 0  # and CORELNK, which has the same representation everywhere
INTEGER: Final = 1
UNSIGNED: Final = 2
FLOAT: Final = 3
BOOLEAN: Final = 4
OPAQUE: Final = 5
TIME: Final = 6
OBJLNK: Final = 7
NO_VALUE: Final = 8
MULTIPLE: Final = 16

TYPE_CODES: Final[dict[ResourceType, int]] = {
    ResourceType.STRING: STRING,
    ResourceType.CORELNK: STRING,
    ResourceType.INTEGER: INTEGER,
    ResourceType.UNSIGNED_INTEGER: UNSIGNED,
    ResourceType.FLOAT: FLOAT,
    ResourceType.BOOLEAN: BOOLEAN,
    ResourceType.OPAQUE: OPAQUE,
    ResourceType.TIME: TIME,
    ResourceType.OBJLNK: OBJLNK,
    ResourceType.NONE: NO_VALUE,
}


#: What plain_value returns for a value it does not take as plain.
NOT_PLAIN: Final = object()


def plain_value(code: int, raw: object, text_opaque: bool = False) -> Any:
    """The value of decoded ``raw`` for a resource of type ``code`` when it is plainly
    valid (the codecs' fast paths), else NOT_PLAIN and the general path decides.
    ``text_opaque``: opaque values come as base64url text (SenML JSON)."""
    raw_type = type(raw)
    try:
        if code == STRING:
            return raw if raw_type is str else NOT_PLAIN
        if code == INTEGER:
            return raw if raw_type is int and INT64_MIN <= raw <= INT64_MAX else NOT_PLAIN  # type: ignore[operator]
        if code == TIME:
            return seconds_to_time(raw) if raw_type is int else NOT_PLAIN  # type: ignore[arg-type]
        if code == OBJLNK:
            return link_from_text(raw) if raw_type is str else NOT_PLAIN  # type: ignore[arg-type]
        if code == UNSIGNED:
            return raw if raw_type is int and 0 <= raw <= UINT64_MAX else NOT_PLAIN  # type: ignore[operator]
        if code == FLOAT:
            return raw if raw_type is float else NOT_PLAIN
        if code == BOOLEAN:
            return raw if raw_type is bool else NOT_PLAIN
        if code == OPAQUE:
            if text_opaque:
                return b64url_decode(raw) if raw_type is str else NOT_PLAIN  # type: ignore[arg-type]
            return raw if raw_type is bytes else NOT_PLAIN
    except (InvalidValue, ValueError):
        pass
    return NOT_PLAIN



class ObjectPlan(NamedTuple):
    """What the fast paths know of one object definition."""

    types: dict[int, tuple[ResourceType, int]]
    """Resource id -> (type, code)."""
    codes: dict[int, int]
    """Resource id -> code alone, for the loops that need nothing else."""
    rtypes: dict[int, ResourceType]
    """Resource id -> type alone, for :func:`~..nodes.instance_from_values`."""
    scratch: dict[str, Any]
    """Per-format caches of what the format derives from this object (shapes, layouts)."""


_CACHE_KEY: Final = ("object-plans",)


def object_plan(model: ModelRegistry | None, object_id: int) -> ObjectPlan | None:
    """The resource table of the current definition of ``object_id``; None when undefined."""
    if model is None:
        return None
    cache = model.derived_cache(_CACHE_KEY)
    try:
        return cache[object_id]  # type: ignore[return-value]
    except KeyError:
        pass
    obj = model.get(object_id)
    plan: ObjectPlan | None = None
    if obj is not None:
        types = {
            rid: (r.type, TYPE_CODES[r.type] | (MULTIPLE if r.multiple else 0))
            for rid, r in obj.resources.items()
        }
        plan = ObjectPlan(
            types,
            {rid: code for rid, (_, code) in types.items()},
            {rid: rtype for rid, (rtype, _) in types.items()},
            {},
        )
    cache[object_id] = plan
    return plan


_Layout = TypeVar("_Layout")


class LayoutCache(Generic[_Layout]):
    """The payload layouts a format has recorded for one object, by payload size.

    TLV and LwM2M CBOR keep the layout of payloads their fast path accepted, to read later
    payloads of the same layout without parsing them (see those modules). Recording a layout
    costs several decodes, so after ``n`` payloads in a row that no layout fitted, one is
    recorded only when ``n`` is a power of two (and then every 1024th): a stream whose layouts
    keep changing pays for a few recordings, not one per payload, and a stream that settles on
    a layout has it recorded soon.
    """

    __slots__ = ("by_size", "misses")
    _LIMIT: Final = 64

    def __init__(self) -> None:
        self.by_size: dict[int, _Layout] = {}
        self.misses = 0

    def should_record(self) -> bool:
        """Count a payload no layout fitted; True when its layout should be recorded."""
        self.misses = misses = self.misses + 1
        return misses & (misses - 1) == 0 or misses % 1024 == 0

    def store(self, size: int, layout: _Layout) -> None:
        if len(self.by_size) >= self._LIMIT:
            self.by_size.clear()
        self.by_size[size] = layout
