"""The query parameters of RD registrations (RFC 9176 section 5.3) and updates (5.3.1).

Sans-IO: query items in, typed parameters or an :class:`RdError` (4.00 with what was wrong)
out. Messages quote the peer's input only in short excerpts.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import NamedTuple

from aiolwm2m.lwm2m.bounded_int import MAX_UINT32, parse_decimal
from aiolwm2m.lwm2m.errors import shown

from .errors import bad_request
from .uri import check_base

#: RFC 9176: ep and d are at most 63 bytes.
MAX_NAME_BYTES = 63
#: Endpoint types one registration may carry, and other registration attributes.
MAX_ENDPOINT_TYPES = 8
MAX_EXTRA_ATTRIBUTES = 16
#: Names that are not registration attributes: lookup controls and link attributes (a
#: registration carrying them would make lookups ambiguous), and LwM2M's parameters (a
#: Register with those is an LwM2M one, see ``aiolwm2m.rd.routing``).
RESERVED_NAMES = frozenset({"page", "count", "href", "anchor", "rt", "if", "rel",
                            "lwm2m", "b", "Q", "sms", "pid"})
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")

Extra = tuple[tuple[str, str | None], ...]


class RdRegisterParams(NamedTuple):
    endpoint: str
    sector: str | None
    lifetime: int
    base: str | None
    endpoint_types: tuple[str, ...]
    extra: Extra


class RdUpdateParams(NamedTuple):
    lifetime: int | None
    base: str | None
    #: None: unchanged; otherwise the new list.
    endpoint_types: tuple[str, ...] | None
    #: Attributes to set (added, or replacing one of the same name).
    extra: Extra


def _name(value: str | None, what: str) -> str:
    if not value:
        raise bad_request(f"{what} needs a value")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise bad_request(f"{what} longer than {MAX_NAME_BYTES} bytes")
    return value


def _lifetime(text: str | None) -> int:
    value = parse_decimal(text or "", MAX_UINT32, 1)
    if value is None:
        raise bad_request(f"lt={shown(text, 16)} is not an integer in 1..{MAX_UINT32}")
    return value


def _items(query: Sequence[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for item in query:
        key, eq, value = item.partition("=")
        if not key:
            raise bad_request(f"empty query parameter in {shown(item, 24)}")
        if not _NAME_CHARS.issuperset(key):
            raise bad_request(f"parameter name {shown(key, 24)} is not a link attribute name")
        out.append((key, value if eq else None))
    return out


class _Collected(NamedTuple):
    single: dict[str, str | None]
    types: list[str]
    extra: list[tuple[str, str | None]]


def _collect(query: Sequence[str], singles: frozenset[str]) -> _Collected:
    single: dict[str, str | None] = {}
    types: list[str] = []
    extra: list[tuple[str, str | None]] = []
    for key, value in _items(query):
        if key == "et":
            if not value:
                raise bad_request("et needs a value")
            types.extend(value.split())
            if len(types) > MAX_ENDPOINT_TYPES:
                raise bad_request(f"more than {MAX_ENDPOINT_TYPES} endpoint types")
        elif key in singles:
            if key in single:
                raise bad_request(f"parameter {key} given twice")
            single[key] = value
        elif key in RESERVED_NAMES:
            raise bad_request(f"{shown(key, 12)} is not a registration attribute")
        else:
            if any(k == key for k, _ in extra):
                raise bad_request(f"parameter {shown(key, 24)} given twice")
            extra.append((key, value))
            if len(extra) > MAX_EXTRA_ATTRIBUTES:
                raise bad_request(f"more than {MAX_EXTRA_ATTRIBUTES} extra attributes")
    return _Collected(single, types, extra)


_UPDATE_SINGLES = frozenset({"lt", "base", "ep", "d"})


def parse_rd_register(query: Sequence[str], *, default_lifetime: int,
                      base_allowed: bool = True) -> RdRegisterParams:
    """``POST /rd?ep&d&lt&base&et&<extra>``; ``base_allowed=False`` for a simple
    registration, whose base is the address it came from. One pass over the query: this
    runs for every registration."""
    endpoint: str | None = None
    sector: str | None = None
    lifetime = 0
    base: str | None = None
    types: list[str] = []
    extra: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in query:
        key, eq, value = item.partition("=")
        if key == "et":
            if not value:
                raise bad_request("et needs a value")
            types.extend(value.split())
            if len(types) > MAX_ENDPOINT_TYPES:
                raise bad_request(f"more than {MAX_ENDPOINT_TYPES} endpoint types")
            continue
        if key in seen:
            raise bad_request(f"parameter {shown(key, 24)} given twice")
        seen.add(key)
        if key == "ep":
            endpoint = _name(value if eq else None, "ep")
        elif key == "d":
            sector = _name(value if eq else None, "d")
        elif key == "lt":
            lifetime = _lifetime(value if eq else None)
        elif key == "base":
            if not base_allowed:
                raise bad_request("base is not allowed in a simple registration")
            base = check_base(value)
        elif not key:
            raise bad_request(f"empty query parameter in {shown(item, 24)}")
        elif not _NAME_CHARS.issuperset(key):
            raise bad_request(f"parameter name {shown(key, 24)} is not a link attribute name")
        elif key in RESERVED_NAMES:
            raise bad_request(f"{shown(key, 12)} is not a registration attribute")
        else:
            extra.append((key, value if eq else None))
            if len(extra) > MAX_EXTRA_ATTRIBUTES:
                raise bad_request(f"more than {MAX_EXTRA_ATTRIBUTES} extra attributes")
    if endpoint is None:
        raise bad_request("missing endpoint name (ep=)")
    return RdRegisterParams(endpoint, sector, lifetime or default_lifetime, base,
                            tuple(types), tuple(extra))


def parse_rd_update(query: Sequence[str], endpoint: str, sector: str | None
                    ) -> RdUpdateParams:
    """``POST {location}?lt&base&et&<extra>``. ``ep`` and ``d`` cannot change; repeating
    the registration's own values is accepted."""
    q = _collect(query, _UPDATE_SINGLES)
    if "ep" in q.single and q.single["ep"] != endpoint:
        raise bad_request("ep cannot change in an update")
    if "d" in q.single and q.single["d"] != sector:
        raise bad_request("d cannot change in an update")
    lifetime = _lifetime(q.single["lt"]) if "lt" in q.single else None
    base = check_base(q.single["base"] or "") if "base" in q.single else None
    return RdUpdateParams(lifetime, base, tuple(q.types) if q.types else None,
                          tuple(q.extra))


def merged_extra(current: Extra, changes: Extra) -> Extra:
    """``current`` with each of ``changes`` set (replacing the same name, or appended)."""
    if not changes:
        return current
    names = {k for k, _ in changes}
    kept = [(k, v) for k, v in current if k not in names]
    merged = tuple(kept) + changes
    if len(merged) > MAX_EXTRA_ATTRIBUTES:
        raise bad_request(f"more than {MAX_EXTRA_ATTRIBUTES} extra attributes")
    return merged
