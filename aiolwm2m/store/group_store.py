"""Device groups (``aiolwm2m.groups``): the record, its plain form, the store interface and
the in-memory store (the reference of tests/store/test_group_contract.py).

A group names its members three ways, all optional and combined: a static list of
endpoint names, the member links of an RD group registration (``et=core.rd-group``), and
a Resource Directory lookup filter (``ep=meter-*``, ``d=plant-1``) that finds them when
an operation runs. The store keeps the definition only; who is a member right now is the
group service's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class DeviceGroup:
    name: str
    #: Endpoint names, in the order operations reach them.
    members: tuple[str, ...] = ()
    #: An RD lookup query (``("ep=meter-*", "d=plant-1")``): every registered LwM2M
    #: endpoint it finds is a member; empty: none.
    filter: tuple[str, ...] = ()
    #: (ep, d) of an RD group registration (RFC 9176 Appendix A) whose links name members.
    rd_group: tuple[str, str | None] | None = None
    description: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def dynamic(self) -> bool:
        return bool(self.filter) or self.rd_group is not None


def group_to_dict(group: DeviceGroup) -> dict[str, Any]:
    """JSON-able form (what the SQLite store writes)."""
    return {"name": group.name, "members": list(group.members), "filter": list(group.filter),
            "rd_group": None if group.rd_group is None else {"ep": group.rd_group[0],
                                                               "d": group.rd_group[1]},
            "description": group.description, "created_at": group.created_at,
            "updated_at": group.updated_at}


def group_from_dict(data: Any) -> DeviceGroup:
    """Inverse of :func:`group_to_dict`; ValueError for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError("not a device group")
    rd_group = data.get("rd_group")
    try:
        return DeviceGroup(
            name=data["name"], members=tuple(str(m) for m in data.get("members", ())),
            filter=tuple(str(f) for f in data.get("filter", ())),
            rd_group=None if rd_group is None else (
                str(rd_group["ep"]), None if rd_group.get("d") is None else str(rd_group["d"])),
            description=str(data.get("description", "")),
            created_at=float(data.get("created_at", 0.0)),
            updated_at=float(data.get("updated_at", 0.0)))
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a device group: {e}") from None


class GroupStore(Protocol):
    def get(self, name: str) -> DeviceGroup | None: ...

    def all(self) -> list[DeviceGroup]:
        """Every group, by name."""

    async def put(self, group: DeviceGroup) -> None:
        """Store ``group``, replacing the one of that name; durable when this returns."""

    async def remove(self, name: str) -> DeviceGroup | None:
        """Forget a group; returns it (None if there was none)."""


class MemoryGroupStore:
    def __init__(self) -> None:
        self._groups: dict[str, DeviceGroup] = {}

    def get(self, name: str) -> DeviceGroup | None:
        return self._groups.get(name)

    def all(self) -> list[DeviceGroup]:
        return [self._groups[n] for n in sorted(self._groups)]

    async def put(self, group: DeviceGroup) -> None:
        self._groups[group.name] = group

    async def remove(self, name: str) -> DeviceGroup | None:
        return self._groups.pop(name, None)
