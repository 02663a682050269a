"""The records of the Resource Directory (RFC 9176): one generic registration and its links.

Plain and immutable like :mod:`aiolwm2m.store.records`, with a positional row form that is
``marshal``-able (the SQLite writer process encodes it as JSON) and reads back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .fast_init import fast_frozen_init
from .records import Address

#: Link parameters in registration order; ``None`` is a parameter without a value (``obs``).
LinkParams = tuple[tuple[str, str | None], ...]


class RdLink(NamedTuple):
    """One registered link: its target as the endpoint wrote it (usually a path relative
    to the registration's base) and its parameters."""

    target: str
    params: LinkParams = ()

    def values(self, name: str) -> list[str]:
        """Space-separated values of every ``name`` parameter (``rt``, ``if``, ``ct``)."""
        out: list[str] = []
        for n, v in self.params:
            if n == name and v:
                out.extend(v.split())
        return out


@fast_frozen_init  # one is made per Register and per Update
@dataclass(frozen=True, slots=True)
class RdRegistration:
    """A registration of any CoAP endpoint at the RD's registration interface.

    ``base`` is the base URI its links resolve against: the one it gave (``base_explicit``)
    or, without one, the address it registered from (which an Update from a new address
    moves). ``sequence`` orders registrations by creation, for stable lookup pages.
    ``identity`` is the principal that created it (None for NoSec)."""

    id: str
    endpoint: str
    sector: str | None
    lifetime: int
    base: str
    base_explicit: bool = False
    endpoint_types: tuple[str, ...] = ()
    extra: LinkParams = ()
    links: tuple[RdLink, ...] = ()
    transport: str = "udp"
    address: Address = ("", 0)
    identity: str | None = None
    registered_at: float = 0.0
    updated_at: float = 0.0
    sequence: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """What identifies an endpoint in the directory: its name within its sector."""
        return (self.endpoint, self.sector or "")

    @property
    def expires_at(self) -> float:
        return self.updated_at + self.lifetime

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


#: Bumped when the row layout changes; rows of another format are refused at load.
RD_ROW_FORMAT = 1

RdRow = tuple[Any, ...]


# Registrations of one kind share their links tuple (the RD parses each distinct payload
# once), so its row form is made once per tuple, keyed by identity as in records.py.
_LINK_ROWS: dict[int, tuple[tuple[RdLink, ...], tuple[Any, ...]]] = {}


def _link_rows(links: tuple[RdLink, ...]) -> tuple[Any, ...]:
    cached = _LINK_ROWS.get(id(links))
    if cached is not None and cached[0] is links:
        return cached[1]
    rows = tuple((link.target, link.params) for link in links)
    if len(_LINK_ROWS) >= 4096:
        _LINK_ROWS.clear()
    _LINK_ROWS[id(links)] = (links, rows)
    return rows


def rd_registration_row(reg: RdRegistration) -> RdRow:
    """Positional, marshal-able form (tuples, strings, numbers, None) for the SQLite writer."""
    return (reg.id, reg.endpoint, reg.sector, reg.lifetime, reg.base, reg.base_explicit,
            reg.endpoint_types, reg.extra, _link_rows(reg.links), reg.transport,
            reg.address[0], reg.address[1], reg.identity, reg.registered_at, reg.updated_at,
            reg.sequence, RD_ROW_FORMAT)


def _params(rows: Any) -> LinkParams:
    return tuple((str(n), None if v is None else str(v)) for n, v in rows)


def rd_registration_from_row(row: Any) -> RdRegistration:
    """Inverse of :func:`rd_registration_row`, from the tuple or its JSON (lists)."""
    if not isinstance(row, list | tuple) or len(row) != 17 or row[-1] != RD_ROW_FORMAT:
        raise ValueError("not an RD registration row of format "
                         f"{RD_ROW_FORMAT}")
    (rid, endpoint, sector, lifetime, base, base_explicit, types, extra, links, transport,
     host, port, identity, registered_at, updated_at, sequence, _) = row
    return RdRegistration(
        id=str(rid), endpoint=str(endpoint), sector=None if sector is None else str(sector),
        lifetime=int(lifetime), base=str(base), base_explicit=bool(base_explicit),
        endpoint_types=tuple(str(t) for t in types), extra=_params(extra),
        links=tuple(RdLink(str(target), _params(params)) for target, params in links),
        transport=str(transport), address=(str(host), int(port)),
        identity=None if identity is None else str(identity),
        registered_at=float(registered_at), updated_at=float(updated_at),
        sequence=int(sequence))
