"""The directory itself, sans-IO: registrations, their indexes and lifetimes, and lookups
over them and over the server's LwM2M registrations.

Nothing here waits or reads a clock: ``now`` comes in, and the lifetime wheel is the one the
server gives (``aiolwm2m.server.deadlines.Deadlines``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Protocol

from aiolwm2m.coap.codes import Code
from aiolwm2m.store.rd_records import RdLink, RdRegistration
from aiolwm2m.store.records import Registration

from .authorization import LookupScope
from .errors import RdError
from .index import INDEXED, DirectoryIndex
from .lookup import (
    Entry,
    Filter,
    LookupQuery,
    endpoint_matches,
    entry_sector,
    rd_entry,
    resource_matches,
)
from .lwm2m_view import LWM2M_ENDPOINT_TYPE, LwM2MRegistrations, lwm2m_entry

#: Lookup views of registrations kept between lookups.
ENTRY_CACHE = 16384


class DeadlineWheel(Protocol):
    def schedule(self, key: str, deadline: float) -> None: ...

    def cancel(self, key: str) -> None: ...

    def pop_due(self, now: float) -> list[str]: ...

    def next_deadline(self) -> float | None: ...


class Directory:
    def __init__(self, expiry: DeadlineWheel, lwm2m: LwM2MRegistrations | None = None
                 ) -> None:
        self.expiry = expiry
        #: The server's LwM2M registrations, shown in lookups (None: not shown).
        self.lwm2m = lwm2m
        #: Registrations by id, in creation order (a re-registration keeps its place).
        self.by_id: dict[str, RdRegistration] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self.index = DirectoryIndex()
        #: Registrations made by unauthenticated peers, per IP address.
        self.per_address: dict[str, int] = {}
        #: Registrations with a sector made by authenticated peers: principal -> sector ->
        #: how many (the "own sectors" of the lookup policy).
        self.sectors_by_identity: dict[str, dict[str, int]] = {}
        self._sequence = 0
        self._entries: dict[str, Entry] = {}
        self._lwm2m_entries: dict[str, tuple[Registration, Entry]] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    # -- changes --------------------------------------------------------------------------

    def put(self, reg: RdRegistration, previous: RdRegistration | None) -> None:
        """Make ``reg`` live, replacing ``previous`` (the same registration before an
        update or re-registration), or as a new one."""
        if previous is not None and self.by_id.get(previous.id) is previous:
            self.index.replace(previous, reg)
            self._uncount(previous)
            if previous.id != reg.id:
                self._forget(previous)
        else:
            self.index.add(reg)
        self.by_id[reg.id] = reg
        self.by_key[reg.key] = reg.id
        self._count(reg)
        self._entries.pop(reg.id, None)
        self.expiry.schedule(reg.id, reg.expires_at)
        self._sequence = max(self._sequence, reg.sequence)

    def drop(self, reg: RdRegistration) -> None:
        if self.by_id.get(reg.id) is not reg:
            return
        self.index.remove(reg)
        self._uncount(reg)
        self._forget(reg)
        self.expiry.cancel(reg.id)

    def _forget(self, reg: RdRegistration) -> None:
        self.by_id.pop(reg.id, None)
        if self.by_key.get(reg.key) == reg.id:
            del self.by_key[reg.key]
        self._entries.pop(reg.id, None)

    def _count(self, reg: RdRegistration) -> None:
        identity = reg.identity
        if identity is None:
            per = self.per_address
            host = reg.address[0]
            per[host] = per.get(host, 0) + 1
        elif reg.sector is not None:
            held = self.sectors_by_identity.setdefault(identity, {})
            held[reg.sector] = held.get(reg.sector, 0) + 1

    def _uncount(self, reg: RdRegistration) -> None:
        identity = reg.identity
        if identity is None:
            per = self.per_address
            host = reg.address[0]
            left = per.get(host, 0) - 1
            if left > 0:
                per[host] = left
            else:
                per.pop(host, None)
        elif reg.sector is not None:
            held = self.sectors_by_identity.get(identity)
            if held is not None:
                left = held.get(reg.sector, 0) - 1
                if left > 0:
                    held[reg.sector] = left
                else:
                    held.pop(reg.sector, None)
                    if not held:
                        del self.sectors_by_identity[identity]

    def sectors_of(self, identity: str) -> Collection[str]:
        """The sectors ``identity`` holds registrations in."""
        return self.sectors_by_identity.get(identity, {}).keys()

    def due(self, now: float) -> list[RdRegistration]:
        """The registrations whose lifetime has passed (still live: the caller drops them
        once their removal is on its way to the store)."""
        out: list[RdRegistration] = []
        for rid in self.expiry.pop_due(now):
            reg = self.by_id.get(rid)
            if reg is None:
                continue
            if not reg.expired(now):
                self.expiry.schedule(rid, reg.expires_at)
                continue
            out.append(reg)
        return out

    # -- lookups --------------------------------------------------------------------------

    def entry(self, reg: RdRegistration) -> Entry:
        entries = self._entries
        entry = entries.get(reg.id)
        if entry is None:
            # Bounded: a cache for repeated lookups, not a second copy of the directory.
            if len(entries) >= ENTRY_CACHE:
                entries.clear()
            entry = entries[reg.id] = rd_entry(reg)
        return entry

    def _lwm2m_entry(self, reg: Registration) -> Entry:
        cached = self._lwm2m_entries.get(reg.id)
        if cached is not None and cached[0] is reg:
            return cached[1]
        entry = lwm2m_entry(reg)
        cache = self._lwm2m_entries
        if len(cache) > 2 * len(self.lwm2m.by_id if self.lwm2m else ()) + 1024:
            cache.clear()
        cache[reg.id] = (reg, entry)
        return entry

    def candidates(self, filters: tuple[Filter, ...]) -> Iterator[Entry]:
        """Entries that may match: through the most selective indexed filter when there
        is one, else every registration; generic ones first (oldest first), then LwM2M
        ones in the order they registered. Lazy: a lookup stops at a full page, and runs
        to the end without giving way (nothing changes the directory meanwhile)."""
        best: Collection[str] | None = None
        for f in filters:
            if f.value is not None and f.name in INDEXED:
                found = self.index.candidates(f.name, f.value, f.prefix)
                if best is None or len(found) < len(best):
                    best = found
        by_id = self.by_id
        generic: Iterable[RdRegistration]
        if best is None:
            generic = by_id.values()
        elif len(best) * 8 > len(by_id):
            # Most of the directory: walking it in order (and stopping once a page is
            # full) beats sorting the candidates.
            generic = (reg for reg in by_id.values() if reg.id in best)
        else:
            generic = sorted((by_id[i] for i in best), key=_sequence_of)
        for reg in generic:
            yield self.entry(reg)
        for lw in self._lwm2m_candidates(filters):
            yield self._lwm2m_entry(lw)

    def _lwm2m_candidates(self, filters: tuple[Filter, ...]) -> Iterable[Registration]:
        """LwM2M registrations have no ``d``, one endpoint type and no ``rt``/``if`` but
        their root link's ``oma.lwm2m``: indexed filters on those decide without a scan
        (``ep`` through the registry's own map)."""
        if self.lwm2m is None:
            return ()
        for f in filters:
            if f.name == "d":
                return ()
            if f.name == "ep" and f.value is not None and not f.prefix:
                reg = self.lwm2m.by_endpoint.get(f.value)
                return (reg,) if reg is not None else ()
            if f.name in ("et", "rt", "if") and not f.accepts(LWM2M_ENDPOINT_TYPE):
                return ()
        return list(self.lwm2m.by_id.values())

    def lookup_endpoints(self, query: LookupQuery, max_examined: int | None = None,
                         scope: LookupScope | None = None) -> list[Entry]:
        """``max_examined``: how many registrations the lookup may look at before it is
        refused (4.00, naming the indexed attributes that would narrow it); ``scope``:
        which sectors the asker may see (None: all)."""
        filters = query.filters
        skip, take = query.page * query.size, query.size
        out: list[Entry] = []
        examined = 0
        for entry in self.candidates(filters):
            examined += 1
            if max_examined is not None and examined > max_examined:
                raise _too_broad(max_examined)
            if scope is not None and not scope.sees(entry_sector(entry)):
                continue
            if all(endpoint_matches(entry, f) for f in filters):
                if skip:
                    skip -= 1
                    continue
                out.append(entry)
                if len(out) >= take:
                    break
        return out

    def lookup_resources(self, query: LookupQuery, max_examined: int | None = None,
                         scope: LookupScope | None = None) -> list[tuple[Entry, RdLink]]:
        filters = query.filters
        skip, take = query.page * query.size, query.size
        out: list[tuple[Entry, RdLink]] = []
        examined = 0
        for entry in self.candidates(filters):
            examined += 1
            if max_examined is not None and examined > max_examined:
                raise _too_broad(max_examined)
            if scope is not None and not scope.sees(entry_sector(entry)):
                continue
            for link in entry.links:
                if all(resource_matches(entry, link, f) for f in filters):
                    if skip:
                        skip -= 1
                        continue
                    out.append((entry, link))
                    if len(out) >= take:
                        return out
        return out


def _too_broad(limit: int) -> RdError:
    return RdError(Code.BAD_REQUEST, f"lookup examines over {limit} registrations: add ep, d, "
                   "et, rt or if", reason="rd-lookup-too-broad")


def _sequence_of(reg: RdRegistration) -> int:
    return reg.sequence
