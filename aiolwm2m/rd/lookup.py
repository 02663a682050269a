"""Lookup (RFC 9176 section 7): the query, how an entry matches it, and the answer's links.

A lookup query is a list of filters ``name=value`` (a trailing ``*`` matches a prefix, a
name without ``=`` matches presence), ANDed, plus ``page`` and ``count``. A filter on a
registration attribute (``ep``, ``d``, ``base``, ``et``) looks at the registration; ``href``
at the link target (as registered or resolved against the base; in an endpoint lookup also
the registration resource's path); ``anchor`` at the link's anchor (likewise); any other name
at the link's attributes or, failing that, the registration's extra attributes. An endpoint
matches a link filter when any of its links does (each filter on its own). ``rt``, ``if``,
``et`` and ``ct`` hold space-separated values; a filter matches any one of them.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import NamedTuple

from aiolwm2m.coap.linkformat import format_param
from aiolwm2m.lwm2m.bounded_int import parse_decimal
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.store.rd_records import LinkParams, RdLink, RdRegistration

from .errors import bad_request
from .uri import resolve

REGISTRATION_ATTRIBUTES = frozenset({"ep", "d", "base", "et"})
MULTI_VALUED = frozenset({"rt", "if", "et", "ct"})
MAX_FILTERS = 16
MAX_PAGE = 1 << 31
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")


class Filter(NamedTuple):
    name: str
    #: None matches any entry that has the attribute.
    value: str | None
    prefix: bool

    def accepts(self, candidate: str) -> bool:
        value = self.value
        if value is None:
            return True
        if self.prefix:
            return candidate.startswith(value)
        return candidate == value

    def accepts_any(self, name: str, candidate: str | None) -> bool:
        """One attribute value, split when the attribute is multi-valued."""
        if self.value is None:
            return True
        if candidate is None:
            return False
        if name in MULTI_VALUED:
            return any(self.accepts(v) for v in candidate.split())
        return self.accepts(candidate)


class LookupQuery(NamedTuple):
    filters: tuple[Filter, ...]
    page: int
    #: Links per answer (``count``, or the most a lookup answers).
    size: int


def parse_lookup(query: Sequence[str], *, max_results: int) -> LookupQuery:
    """4.00 for a filter that cannot be parsed and for ``page``/``count`` out of range
    (``count`` 1..max_results; ``page`` needs ``count``). Without ``count`` a lookup
    answers at most ``max_results`` links."""
    filters: list[Filter] = []
    page: int | None = None
    count: int | None = None
    for item in query:
        name, eq, value = item.partition("=")
        if not name or not _NAME_CHARS.issuperset(name):
            raise bad_request(f"lookup filter {shown(item, 24)} has no attribute name")
        if name in ("page", "count"):
            if not eq:
                raise bad_request(f"{name} needs a number")
            limit = (MAX_PAGE, 0) if name == "page" else (max_results, 1)
            number = parse_decimal(value, *limit)
            if number is None:
                raise bad_request(f"{name}={shown(value, 16)} is not an integer in "
                                  f"{limit[1]}..{limit[0]}")
            if (page if name == "page" else count) is not None:
                raise bad_request(f"{name} given twice")
            if name == "page":
                page = number
            else:
                count = number
            continue
        prefix = eq and value.endswith("*")
        filters.append(Filter(name, (value[:-1] if prefix else value) if eq else None,
                              bool(prefix)))
        if len(filters) > MAX_FILTERS:
            raise bad_request(f"more than {MAX_FILTERS} lookup filters")
    if page is not None and count is None:
        raise bad_request("page needs count")
    return LookupQuery(tuple(filters), page or 0, count or max_results)


class Entry(NamedTuple):
    """A registration as lookups see it, generic or LwM2M alike."""

    path: str
    base: str
    #: ep, d, base, et, then the other registration attributes.
    attributes: LinkParams
    links: tuple[RdLink, ...]


def rd_entry(reg: RdRegistration) -> Entry:
    attrs: list[tuple[str, str | None]] = [("ep", reg.endpoint)]
    if reg.sector is not None:
        attrs.append(("d", reg.sector))
    attrs.append(("base", reg.base))
    attrs.extend(("et", t) for t in reg.endpoint_types)
    attrs.extend(reg.extra)
    return Entry(f"/rd/{reg.id}", reg.base, tuple(attrs), reg.links)


def entry_sector(entry: Entry) -> str | None:
    """The entry's ``d`` (it comes right after ``ep`` when there is one)."""
    attrs = entry.attributes
    if len(attrs) > 1 and attrs[1][0] == "d":
        return attrs[1][1]
    return None


def _attribute_matches(entry: Entry, f: Filter) -> bool:
    found = False
    for name, value in entry.attributes:
        if name == f.name:
            found = True
            if f.accepts_any(name, value):
                return True
    return found and f.value is None


def _link_matches(entry: Entry, link: RdLink, f: Filter) -> bool:
    name = f.name
    if name == "href":
        return f.accepts(link.target) or f.accepts(resolve(entry.base, link.target))
    for n, v in link.params:
        if n == name:
            if name == "anchor" and v is not None:
                if f.accepts(v) or f.accepts(resolve(entry.base, v)):
                    return True
            elif f.accepts_any(name, v):
                return True
    return False


def endpoint_matches(entry: Entry, f: Filter) -> bool:
    if f.name in REGISTRATION_ATTRIBUTES:
        return _attribute_matches(entry, f)
    if f.name == "href" and f.accepts(entry.path):
        return True
    if _attribute_matches(entry, f):
        return True
    return any(_link_matches(entry, link, f) for link in entry.links)


def resource_matches(entry: Entry, link: RdLink, f: Filter) -> bool:
    if f.name in REGISTRATION_ATTRIBUTES:
        return _attribute_matches(entry, f)
    return _link_matches(entry, link, f) or (f.name not in ("href", "anchor")
                                             and _attribute_matches(entry, f))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _param(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={_quote(value)}"


def format_endpoint(entry: Entry) -> str:
    """``</rd/{id}>;ep="...";d="...";base="...";et="...";<extra>``"""
    return f"<{entry.path}>;" + ";".join(_param(n, v) for n, v in entry.attributes)


def format_resource(entry: Entry, link: RdLink) -> str:
    """The link with its target resolved against the registration's base, and its anchor
    too when it has one."""
    parts = [f"<{resolve(entry.base, link.target)}>"]
    for name, value in link.params:
        if name == "anchor" and value is not None:
            value = resolve(entry.base, value)
        parts.append(format_param(name, value))
    return ";".join(parts)
