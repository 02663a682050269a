"""Notification attributes: pmin, pmax, gt, lt, st, epmin, epmax, and 1.1/1.2 con, hqmax.

* :func:`parse_write_attributes` reads a Write-Attributes query (``pmin=10&gt=30.5&lt``: a
  bare name unsets that attribute) into an :class:`AttributeUpdate`.
* :func:`validate_attributes` checks a set against the TS rules and, when given, the resource
  definition (gt/lt/st only on numeric single resources or resource instances).
* :meth:`NotificationAttributes.to_link_params` / :func:`attributes_from_link_params` map them
  to and from Discover link parameters.
* :func:`merge_attributes` applies inheritance: object < instance < resource (< resource
  instance); a deeper level overrides a shallower one attribute by attribute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from .bounded_int import MAX_UINT32, parse_decimal
from .errors import InvalidAttribute, shown
from .model.definitions import ResourceModel
from .path import LwM2MPath
from .values import ResourceType

__all__ = [
    "ATTRIBUTE_NAMES",
    "AttributeUpdate",
    "NotificationAttributes",
    "attributes_from_link_params",
    "merge_attributes",
    "parse_write_attributes",
    "validate_attributes",
]

_INTEGER_NAMES: Final = ("pmin", "pmax", "epmin", "epmax", "hqmax")
#: pmin, pmax, epmin, epmax (seconds) and hqmax (a count) share the range of a 32-bit
#: unsigned integer, like the registration lifetime: 136 years is beyond any period.
MAX_INTEGER_ATTRIBUTE: Final = MAX_UINT32
_FLOAT_NAMES: Final = ("gt", "lt", "st")
ATTRIBUTE_NAMES: Final = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "con", "hqmax")
_NUMERIC_TYPES: Final = frozenset(
    {ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT}
)


@dataclass(frozen=True, slots=True)
class NotificationAttributes:
    """One level's attributes; ``None`` means "not set at this level"."""

    pmin: int | None = None
    pmax: int | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: int | None = None
    epmax: int | None = None
    con: int | None = None
    hqmax: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in ATTRIBUTE_NAMES)

    def items(self) -> list[tuple[str, int | float]]:
        """The attributes that are set, in the TS order."""
        out: list[tuple[str, int | float]] = []
        for name in ATTRIBUTE_NAMES:
            value = getattr(self, name)
            if value is not None:
                out.append((name, value))
        return out

    def to_link_params(self) -> list[tuple[str, str]]:
        """Link-format parameters for Discover (``[("pmin", "10"), ("gt", "30.5")]``)."""
        return [(name, _format_number(value)) for name, value in self.items()]

    def to_query(self) -> str:
        """The Write-Attributes query string that sets these attributes."""
        return "&".join(f"{name}={text}" for name, text in self.to_link_params())


def _format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True, slots=True)
class AttributeUpdate:
    """A parsed Write-Attributes request: values to set and names to unset."""

    set: NotificationAttributes
    unset: frozenset[str]

    def apply_to(self, current: NotificationAttributes) -> NotificationAttributes:
        changes: dict[str, int | float | None] = {name: None for name in self.unset}
        changes.update(self.set.items())
        return replace(current, **changes)  # type: ignore[arg-type]


def _parse_value(name: str, text: str) -> int | float:
    if name in _INTEGER_NAMES:
        number = parse_decimal(text, MAX_INTEGER_ATTRIBUTE)
        if number is None:
            raise InvalidAttribute(
                name,
                f"{shown(text, 24)} is not a non-negative integer up to {MAX_INTEGER_ATTRIBUTE}",
            )
        return number
    if name == "con":
        if text not in ("0", "1"):
            raise InvalidAttribute(name, f"{shown(text, 24)} is not 0 or 1")
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise InvalidAttribute(name, f"{shown(text, 24)} is not a number") from None
    if not math.isfinite(value) or text.strip() != text or "_" in text:
        raise InvalidAttribute(name, f"{shown(text, 24)} is not a finite decimal number")
    return value


def parse_write_attributes(query: str | Sequence[str]) -> AttributeUpdate:
    """Parse ``"pmin=10&gt=30.5&lt"`` or ``["pmin=10", "gt=30.5", "lt"]``.

    Raises :class:`InvalidAttribute` for unknown names, malformed values and names given twice.
    """
    parts = [p for p in query.split("&")] if isinstance(query, str) else list(query)
    values: dict[str, int | float] = {}
    unset: set[str] = set()
    for part in parts:
        if not part:
            continue
        name, sep, text = part.partition("=")
        if name not in ATTRIBUTE_NAMES:
            raise InvalidAttribute(name, "unknown attribute")
        if name in values or name in unset:
            raise InvalidAttribute(name, "given twice")
        if not sep:
            unset.add(name)
            continue
        values[name] = _parse_value(name, text)
    return AttributeUpdate(NotificationAttributes(**values), frozenset(unset))  # type: ignore[arg-type]


def attributes_from_link_params(params: Iterable[tuple[str, str | None]]) -> NotificationAttributes:
    """The notification attributes among link parameters (other parameters are ignored)."""
    values: dict[str, int | float] = {}
    for name, text in params:
        if name in ATTRIBUTE_NAMES:
            if text is None:
                raise InvalidAttribute(name, "has no value")
            values[name] = _parse_value(name, text)
    return NotificationAttributes(**values)  # type: ignore[arg-type]


def validate_attributes(
    attributes: NotificationAttributes,
    path: LwM2MPath | None = None,
    resource: ResourceModel | None = None,
) -> None:
    """Check the TS rules; raises :class:`InvalidAttribute` naming the rule broken.

    * pmin, pmax, epmin, epmax, hqmax are non-negative integers; con is 0 or 1;
    * pmin <= pmax and epmin <= epmax when both are set;
    * st > 0; lt < gt, and lt + 2*st < gt when st is set too;
    * gt, lt and st only on a resource or resource instance path, and, when the definition
      is known, only on a numeric resource, and at resource level only on a single one.
    """
    for name in _INTEGER_NAMES:
        value = getattr(attributes, name)
        if value is not None and (
            type(value) is not int or not 0 <= value <= MAX_INTEGER_ATTRIBUTE
        ):
            raise InvalidAttribute(
                name,
                f"{shown(value, 24)} is not a non-negative integer up to {MAX_INTEGER_ATTRIBUTE}",
            )
    if attributes.con is not None and attributes.con not in (0, 1):
        raise InvalidAttribute("con", f"{shown(attributes.con, 24)} is not 0 or 1")
    pmin, pmax = attributes.pmin, attributes.pmax
    if pmin is not None and pmax is not None and pmin > pmax:
        raise InvalidAttribute("pmax", f"pmax {pmax} is below pmin {pmin}")
    epmin, epmax = attributes.epmin, attributes.epmax
    if epmin is not None and epmax is not None and epmin > epmax:
        raise InvalidAttribute("epmax", f"epmax {epmax} is below epmin {epmin}")
    gt, lt, st = attributes.gt, attributes.lt, attributes.st
    for name in _FLOAT_NAMES:
        value = getattr(attributes, name)
        if value is not None and not _finite(value):
            raise InvalidAttribute(name, f"{shown(value, 24)} is not a finite number")
    if st is not None and st <= 0:
        raise InvalidAttribute("st", f"st must be greater than 0, got {st}")
    if lt is not None and gt is not None:
        if not lt < gt:
            raise InvalidAttribute("lt", f"lt {lt} must be below gt {gt}")
        if st is not None and not lt + 2 * st < gt:
            raise InvalidAttribute("st", f"lt + 2*st ({lt + 2 * st}) must be below gt {gt}")
    if gt is None and lt is None and st is None:
        return
    name = "gt" if gt is not None else "lt" if lt is not None else "st"
    if path is not None and len(path) < 3:
        raise InvalidAttribute(name, f"only allowed on a resource, not on {path.level_name} {path}")
    if resource is not None:
        if resource.type not in _NUMERIC_TYPES:
            raise InvalidAttribute(name, f"resource {resource.name!r} is not numeric")
        if resource.multiple and (path is None or len(path) == 3):
            raise InvalidAttribute(name, f"resource {resource.name!r} is multiple-instance")


def _finite(value: object) -> bool:
    if type(value) is bool or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the range of a double
        return False


def merge_attributes(*levels: NotificationAttributes | None) -> NotificationAttributes:
    """Effective attributes: later (deeper) levels override earlier ones per attribute.

    Call as ``merge_attributes(defaults, object_level, instance_level, resource_level)``.
    """
    merged: dict[str, int | float] = {}
    for level in levels:
        if level is not None:
            merged.update(level.items())
    return NotificationAttributes(**merged)  # type: ignore[arg-type]
