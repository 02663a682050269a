"""Indexes of the directory, so that a lookup by ``ep``, ``d``, ``et``, ``rt`` or ``if``
touches the registrations it finds, not every registration.

Registration attributes (``ep``, ``d``, ``et``) map each value to the ids of the
registrations that have it. Link attributes (``rt``, ``if``) are indexed per *link set*: the
tuple of links a registration holds, which registrations of one kind share (the link
parser hands out one tuple per distinct payload). A value maps to the link sets that have
a link with it, and each link set to its registrations; so a registration costs one set
insertion for all its links, and a lookup by ``rt`` reaches the registrations through the
few link sets that match.

A trailing-``*`` lookup (a prefix) goes through a second map from the first :data:`HEAD`
characters of each value to the values that start so: it visits the values sharing the
prefix's head, never the registrations. A prefix shorter than the head visits every
distinct value of the attribute (still not the registrations).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Iterator
from typing import Generic, TypeVar

from aiolwm2m.store.rd_records import RdLink, RdRegistration

HEAD = 3
REGISTRATION_INDEXED = ("ep", "d", "et")
LINK_INDEXED = ("rt", "if")
INDEXED = frozenset(REGISTRATION_INDEXED + LINK_INDEXED)

K = TypeVar("K", bound=Hashable)


class ValueIndex(Generic[K]):
    """Value -> keys holding it, with prefix search through the values' heads."""

    __slots__ = ("exact", "heads")

    def __init__(self) -> None:
        self.exact: dict[str, set[K]] = {}
        self.heads: dict[str, set[str]] = {}

    def add(self, value: str, key: K) -> None:
        keys = self.exact.get(value)
        if keys is None:
            keys = self.exact[value] = set()
            head = value[:HEAD]
            values = self.heads.get(head)
            if values is None:
                self.heads[head] = {value}
            else:
                values.add(value)
        keys.add(key)

    def discard(self, value: str, key: K) -> None:
        keys = self.exact.get(value)
        if keys is None:
            return
        keys.discard(key)
        if not keys:
            del self.exact[value]
            head = value[:HEAD]
            values = self.heads.get(head)
            if values is not None:
                values.discard(value)
                if not values:
                    del self.heads[head]

    def equal(self, value: str) -> set[K]:
        return self.exact.get(value) or set()

    def prefixed(self, prefix: str) -> set[K]:
        if len(prefix) >= HEAD:
            values: Iterable[str] = self.heads.get(prefix[:HEAD], ())
        else:
            values = self.exact
        out: set[K] = set()
        exact = self.exact
        for value in values:
            if value.startswith(prefix):
                out |= exact[value]
        return out


class UnionOfSets(Collection[str]):
    """Registration ids of several link sets, without copying them into one set (each
    registration belongs to exactly one link set, so they are disjoint)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[set[str]]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __contains__(self, rid: object) -> bool:
        return any(rid in p for p in self.parts)

    def __iter__(self) -> Iterator[str]:
        for p in self.parts:
            yield from p


def link_terms(links: tuple[RdLink, ...]) -> frozenset[tuple[str, str]]:
    """The (rt or if, value) pairs of a link set."""
    terms: set[tuple[str, str]] = set()
    for link in links:
        for name, value in link.params:
            if value and (name == "rt" or name == "if"):
                for v in value.split():
                    terms.add((name, v))
    return frozenset(terms)


class _LinkSet:
    __slots__ = ("links", "regs", "terms")

    def __init__(self, links: tuple[RdLink, ...]) -> None:
        #: Held so that its id() stays this set's key while registrations use it.
        self.links = links
        self.terms = link_terms(links)
        self.regs: set[str] = set()


class DirectoryIndex:
    def __init__(self) -> None:
        self.by_attribute: dict[str, ValueIndex[str]] = {
            name: ValueIndex() for name in REGISTRATION_INDEXED}
        self.by_link_attribute: dict[str, ValueIndex[int]] = {
            name: ValueIndex() for name in LINK_INDEXED}
        self._link_sets: dict[int, _LinkSet] = {}

    def add(self, reg: RdRegistration) -> None:
        by = self.by_attribute
        rid = reg.id
        by["ep"].add(reg.endpoint, rid)
        if reg.sector is not None:
            by["d"].add(reg.sector, rid)
        if reg.endpoint_types:
            et = by["et"]
            for t in set(reg.endpoint_types):
                et.add(t, rid)
        self._join(reg.links, rid)

    def remove(self, reg: RdRegistration) -> None:
        by = self.by_attribute
        rid = reg.id
        by["ep"].discard(reg.endpoint, rid)
        if reg.sector is not None:
            by["d"].discard(reg.sector, rid)
        for t in reg.endpoint_types:
            by["et"].discard(t, rid)
        self._leave(reg.links, rid)

    def replace(self, old: RdRegistration, new: RdRegistration) -> None:
        if old.id != new.id or old.key != new.key:
            self.remove(old)
            self.add(new)
            return
        if old.endpoint_types != new.endpoint_types:
            et = self.by_attribute["et"]
            for t in old.endpoint_types:
                et.discard(t, old.id)
            for t in new.endpoint_types:
                et.add(t, new.id)
        if old.links is not new.links:
            self._leave(old.links, old.id)
            self._join(new.links, new.id)

    def _join(self, links: tuple[RdLink, ...], rid: str) -> None:
        key = id(links)
        entry = self._link_sets.get(key)
        if entry is None:
            entry = self._link_sets[key] = _LinkSet(links)
            for name, value in entry.terms:
                self.by_link_attribute[name].add(value, key)
        entry.regs.add(rid)

    def _leave(self, links: tuple[RdLink, ...], rid: str) -> None:
        key = id(links)
        entry = self._link_sets.get(key)
        if entry is None or entry.links is not links:
            return
        entry.regs.discard(rid)
        if not entry.regs:
            del self._link_sets[key]
            for name, value in entry.terms:
                self.by_link_attribute[name].discard(value, key)

    def candidates(self, name: str, value: str, prefix: bool) -> Collection[str]:
        """Ids of the registrations that have ``name`` = ``value`` (or a value starting
        with it): on the registration, or on one of its links for ``rt`` and ``if``."""
        if name in self.by_attribute:
            index = self.by_attribute[name]
            return index.prefixed(value) if prefix else index.equal(value)
        link_index = self.by_link_attribute[name]
        keys = link_index.prefixed(value) if prefix else link_index.equal(value)
        sets = self._link_sets
        return UnionOfSets([sets[k].regs for k in keys])

    def link_set_count(self) -> int:
        return len(self._link_sets)
