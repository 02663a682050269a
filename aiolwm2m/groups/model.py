"""What a device group definition may hold, checked once where it comes in (the REST API,
the Python API): every error says what was wrong, and nothing of a refused definition is
stored."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.rd.errors import RdError
from aiolwm2m.rd.lookup import parse_lookup
from aiolwm2m.rd.params import MAX_NAME_BYTES
from aiolwm2m.store.group_store import DeviceGroup

from .limits import GroupLimits

#: Group names go in URLs (/api/groups/{name}) and logs as they are.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,62}")
#: LwM2M endpoint names are not bounded by the protocol; 255 covers URNs (IMEI, UUID...).
MAX_ENDPOINT_CHARS = 255
MAX_DESCRIPTION_CHARS = 1024
MAX_FILTER_CHARS = 2048


class GroupError(ValueError):
    """A refused group definition or operation (the REST API answers 400 with it)."""


class UnknownGroup(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no group {shown(self.name, 70)}"


class GroupBusy(RuntimeError):
    """Too many group operations are running (GroupLimits.max_active_runs)."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
        raise GroupError(f"group name {shown(name, 70)}: 1-63 letters, digits and ._~- "
                         "(starting with a letter or digit)")
    return name


def parse_filter(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """A lookup filter, as a query string (``ep=meter-*&d=plant-1``) or its items; checked
    as an RD lookup would check it (page and count make no sense here)."""
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > MAX_FILTER_CHARS:
            raise GroupError(f"filter longer than {MAX_FILTER_CHARS} characters")
        items = [item for item in value.split("&") if item]
    else:
        items = list(value)
        if sum(len(str(i)) for i in items) > MAX_FILTER_CHARS:
            raise GroupError(f"filter longer than {MAX_FILTER_CHARS} characters")
        if not all(isinstance(i, str) and i for i in items):
            raise GroupError("filter items are non-empty strings such as \"ep=meter-*\"")
    if any(item.partition("=")[0] in ("page", "count") for item in items):
        raise GroupError("filter: page and count do not apply to a group")
    try:
        query = parse_lookup(items, max_results=1)
    except RdError as e:
        raise GroupError(f"filter: {e.message}") from None
    if items and not query.filters:
        raise GroupError("filter: no criterion")
    return tuple(items)


def check_members(members: Iterable[str], limits: GroupLimits) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for i, member in enumerate(members):
        if not isinstance(member, str) or not member or len(member) > MAX_ENDPOINT_CHARS:
            raise GroupError(f"members[{i}]: an endpoint name of 1-{MAX_ENDPOINT_CHARS} "
                             "characters")
        if member in seen:
            raise GroupError(f"members[{i}]: {shown(member, 70)} is listed twice")
        seen.add(member)
        out.append(member)
        if len(out) > limits.max_members:
            raise GroupError(f"more than {limits.max_members} members")
    return tuple(out)


def check_rd_group(rd_group: tuple[str, str | None] | None) -> tuple[str, str | None] | None:
    if rd_group is None:
        return None
    ep, d = rd_group
    for what, value in (("ep", ep), ("d", d)):
        if value is None and what == "d":
            continue
        if not isinstance(value, str) or not value or (
                len(value.encode("utf-8")) > MAX_NAME_BYTES):
            raise GroupError(f"rd_group.{what}: a name of 1-{MAX_NAME_BYTES} bytes")
    return (ep, d)


def checked_group(name: str, *, members: Iterable[str] = (),
                  filter: str | Iterable[str] | None = None,
                  rd_group: tuple[str, str | None] | None = None, description: str = "",
                  limits: GroupLimits, now: float, created_at: float | None = None
                  ) -> DeviceGroup:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        raise GroupError(f"description: at most {MAX_DESCRIPTION_CHARS} characters")
    return DeviceGroup(name=check_name(name), members=check_members(members, limits),
                       filter=parse_filter(filter), rd_group=check_rd_group(rd_group),
                       description=description,
                       created_at=now if created_at is None else created_at, updated_at=now)
