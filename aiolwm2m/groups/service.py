"""``server.groups``: device groups and the operations fanned out to their members.

Other services resolve a group through two calls, and nothing else:

* ``server.groups.members("meters") -> list[str]``: the endpoint names the group has right
  now (its static members, the members its RD group registration names, then every
  registered LwM2M endpoint its filter finds, in that order, each once; at most
  ``GroupLimits.max_members``). :class:`UnknownGroup` (a LookupError) when there is no
  such group.
* ``server.groups.resolve("meters") -> Membership``: the same, with whether the list was
  cut at the limit.

Static members are listed whether or not they are registered (an operation reports
``not-registered`` for those that are not); a filter finds registered endpoints only. A
filter is an RD lookup (``ep=meter-*&d=plant-1``): it looks at the RD's registrations and
the LwM2M registrations as lookups show them (``et=oma.lwm2m``, no sector), and keeps the
names that are registered LwM2M endpoints; so ``d=plant-1`` finds the LwM2M devices whose
names a commissioning tool (or the device) registered in the RD with sector plant-1.

Operations: ``read``, ``write``, ``execute``, ``write_attributes``, ``observe`` (and
``send`` for any operation) start a :class:`~.runs.GroupRun` and return it at once::

    run = server.groups.read("meters", "/3/0/0", concurrency=32)
    async for result in run.follow():         # MemberResult, as each member answers
        print(result.endpoint, result.status, result.response)
    await run.wait()
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from aiolwm2m.lwm2m.attributes import AttributeUpdate, parse_write_attributes
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.operations import (
    ExecuteRequest,
    ObserveRequest,
    Operation,
    ReadRequest,
    WriteAttributesRequest,
    WriteRequest,
)
from aiolwm2m.lwm2m.path import ROOT, LwM2MPath
from aiolwm2m.rd.directory import Directory
from aiolwm2m.rd.lookup import endpoint_matches, parse_lookup
from aiolwm2m.server.deadlines import Deadlines
from aiolwm2m.store.group_sqlite import open_group_store
from aiolwm2m.store.group_store import DeviceGroup, GroupStore, MemoryGroupStore
from aiolwm2m.store.interfaces import Stores

from .limits import GroupLimits
from .model import GroupBusy, GroupError, UnknownGroup, checked_group
from .runs import GroupRun

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)


class Membership(NamedTuple):
    endpoints: list[str]
    #: More endpoints matched than the group may have; the rest were left out.
    truncated: bool


def _path(text: str | LwM2MPath) -> LwM2MPath:
    if isinstance(text, LwM2MPath):
        return text
    try:
        return LwM2MPath.parse(text)
    except LwM2MError as e:
        raise GroupError(str(e)) from None


class GroupService:
    def __init__(self, server: LwM2MServer) -> None:
        self.server = server
        self.limits: GroupLimits = server.config.group_limits
        self.store: GroupStore = MemoryGroupStore()
        #: Runs by id, oldest first: the running ones and the last ``kept_runs`` finished.
        self.runs: dict[str, GroupRun] = {}
        self._lwm2m_only: Directory | None = None

    async def open(self, stores: Stores) -> None:
        self.store = await open_group_store(stores)
        groups = self.store.all()
        if groups:
            log.info("loaded %d device groups", len(groups))

    def close(self) -> None:
        for run in self.runs.values():
            run.cancel()

    # -- definitions ----------------------------------------------------------------------

    def get(self, name: str) -> DeviceGroup | None:
        return self.store.get(name)

    def all(self) -> list[DeviceGroup]:
        return self.store.all()

    async def put(self, name: str, *, members: Iterable[str] = (),
                  filter: str | Iterable[str] | None = None,
                  rd_group: tuple[str, str | None] | None = None,
                  description: str = "") -> DeviceGroup:
        """Create or replace a group; GroupError (nothing stored) for a bad definition."""
        current = self.store.get(name)
        if current is None and len(self.store.all()) >= self.limits.max_groups:
            raise GroupError(f"there are {self.limits.max_groups} groups already")
        group = checked_group(name, members=members, filter=filter, rd_group=rd_group,
                              description=description, limits=self.limits,
                              now=self.server.config.clock(),
                              created_at=current.created_at if current is not None else None)
        await self.store.put(group)
        log.info("%s group %s: %d static members%s%s", "replaced" if current else "created",
                 name, len(group.members),
                 f", filter {'&'.join(group.filter)}" if group.filter else "",
                 f", RD group {group.rd_group[0]}" if group.rd_group else "")
        return group

    async def remove(self, name: str) -> DeviceGroup | None:
        group = await self.store.remove(name)
        if group is not None:
            log.info("removed group %s", name)
        return group

    def _group(self, name: str) -> DeviceGroup:
        group = self.store.get(name)
        if group is None:
            raise UnknownGroup(name)
        return group

    # -- membership -----------------------------------------------------------------------

    def members(self, name: str) -> list[str]:
        """The group's endpoint names now (see the module); UnknownGroup if none."""
        return self.resolve(name).endpoints

    def resolve(self, name: str) -> Membership:
        return self.resolve_group(self._group(name))

    def resolve_group(self, group: DeviceGroup) -> Membership:
        limit = self.limits.max_members
        found: dict[str, None] = dict.fromkeys(group.members)
        rd = self.server.rd
        if group.rd_group is not None and rd is not None:
            for ep, _ in rd.group_members(*group.rd_group) or ():
                found.setdefault(ep)
        truncated = len(found) > limit
        if group.filter and not truncated:
            truncated = self._filtered(group.filter, found, limit)
        endpoints = list(found)
        return Membership(endpoints[:limit], truncated or len(endpoints) > limit)

    def _filtered(self, query: tuple[str, ...], found: dict[str, None], limit: int) -> bool:
        """Add the registered LwM2M endpoints the filter finds; True if it found more than
        ``limit`` members in all."""
        filters = parse_lookup(list(query), max_results=1).filters
        registered = self.server.registry.by_endpoint
        for entry in self._directory().candidates(filters):
            if all(endpoint_matches(entry, f) for f in filters):
                ep = entry.attributes[0][1]
                if ep is not None and ep in registered and ep not in found:
                    found[ep] = None
                    if len(found) > limit:
                        return True
        return False

    def _directory(self) -> Directory:
        rd = self.server.rd
        if rd is not None:
            return rd.directory
        if self._lwm2m_only is None:  # --no-rd: filters see the LwM2M registrations only
            self._lwm2m_only = Directory(Deadlines(), self.server.registry)
        return self._lwm2m_only

    # -- operations -----------------------------------------------------------------------

    def send(self, name: str, op: Operation | Callable[[str], Operation], *,
             concurrency: int | None = None, timeout: float | None = None,
             queue_ttl: float | None = None, at_most_once: bool = False) -> GroupRun:
        """Start sending ``op`` (or ``op(endpoint)``, for a request that depends on the
        member) to every member; returns the running :class:`GroupRun`."""
        if callable(op):
            return self._launch(name, op, "request", "", concurrency, timeout, queue_ttl,
                                at_most_once)
        fixed = op
        return self._launch(name, lambda _: fixed, op.kind, str(getattr(op, "path", "")),
                            concurrency, timeout, queue_ttl, at_most_once)

    def _launch(self, name: str, op_for: Callable[[str], Operation], kind: str, path: str,
                concurrency: int | None, timeout: float | None, queue_ttl: float | None,
                at_most_once: bool) -> GroupRun:
        limits = self.limits
        concurrency = limits.default_concurrency if concurrency is None else concurrency
        if not 1 <= concurrency <= limits.max_concurrency:
            raise GroupError(f"concurrency {concurrency} is not in 1..{limits.max_concurrency}")
        membership = self.resolve(name)
        if sum(1 for r in self.runs.values() if not r.done) >= limits.max_active_runs:
            raise GroupBusy(f"{limits.max_active_runs} group operations are running")
        run = GroupRun(
            secrets.token_urlsafe(9), name, kind, path, membership.endpoints,
            concurrency=concurrency, op_for=op_for,
            submit=functools.partial(self.server.submit, timeout=timeout, queue_ttl=queue_ttl,
                                     at_most_once=at_most_once),
            waiter=self.server.queue.waiter, truncated=membership.truncated)
        self.runs[run.id] = run
        finished = [rid for rid, r in self.runs.items() if r.done]
        for rid in finished[:max(0, len(finished) - self.limits.kept_runs)]:
            del self.runs[rid]
        run.start()
        log.info("group %s: %s %s to %d members (%d at a time) as run %s", run.group,
                 run.operation, run.path or "", len(run.members), run.concurrency, run.id)
        return run

    def read(self, name: str, path: str | LwM2MPath, *, format: int | None = None,
             concurrency: int | None = None, timeout: float | None = None,
             queue_ttl: float | None = None) -> GroupRun:
        return self.send(name, ReadRequest(_path(path), format), concurrency=concurrency,
                         timeout=timeout, queue_ttl=queue_ttl)

    def observe(self, name: str, path: str | LwM2MPath, *, format: int | None = None,
                concurrency: int | None = None, timeout: float | None = None,
                queue_ttl: float | None = None) -> GroupRun:
        return self.send(name, ObserveRequest(_path(path), format), concurrency=concurrency,
                         timeout=timeout, queue_ttl=queue_ttl)

    def execute(self, name: str, path: str | LwM2MPath, arguments: str = "", *,
                concurrency: int | None = None, timeout: float | None = None,
                queue_ttl: float | None = None, at_most_once: bool = False) -> GroupRun:
        p = _path(path)
        if not p.is_resource:
            raise GroupError("Execute targets a resource path")
        return self.send(name, ExecuteRequest(p, arguments), concurrency=concurrency,
                         timeout=timeout, queue_ttl=queue_ttl, at_most_once=at_most_once)

    def write_attributes(self, name: str, path: str | LwM2MPath,
                         attributes: AttributeUpdate | str | Iterable[str], *,
                         concurrency: int | None = None, timeout: float | None = None,
                         queue_ttl: float | None = None) -> GroupRun:
        """``attributes``: ``"pmin=10&pmax=60"``, its items, or an AttributeUpdate."""
        if not isinstance(attributes, AttributeUpdate):
            try:
                attributes = parse_write_attributes(
                    attributes if isinstance(attributes, str) else list(attributes))
            except LwM2MError as e:
                raise GroupError(str(e)) from None
        return self.send(name, WriteAttributesRequest(_path(path), attributes),
                         concurrency=concurrency, timeout=timeout, queue_ttl=queue_ttl)

    def write(self, name: str, path: str | LwM2MPath, value: Any, *, replace: bool = True,
              format: int | None = None,
              convert: Callable[[Any, LwM2MPath, Any], Any] | None = None,
              concurrency: int | None = None, timeout: float | None = None,
              queue_ttl: float | None = None, at_most_once: bool = False) -> GroupRun:
        """Write ``value``, typed by each member's own model (``convert(model, path,
        value)`` first, e.g. the REST API's opaque values); a member whose model cannot
        take it fails alone."""
        p = _path(path)
        if p == ROOT:
            raise GroupError("cannot write the root")
        server = self.server

        def op_for(endpoint: str) -> Operation:
            member_value = value
            if convert is not None:
                member_value = convert(server.context(endpoint).model, p, value)
            return WriteRequest(p, server.build(endpoint, p, member_value), replace, format)

        return self._launch(name, op_for, "write", str(p), concurrency, timeout, queue_ttl,
                            at_most_once)
