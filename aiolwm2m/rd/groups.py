"""RD groups (RFC 9176 Appendix A, CRD-006), sans-IO.

A group is a registration with the endpoint type ``core.rd-group``: its ``ep`` is the group
name, its ``base`` usually the multicast address the members listen on, and its links the
resources every member offers (``</light>;rt="light"``). A commissioning tool registers it
like any endpoint; ``/rd-lookup/ep?et=core.rd-group`` finds groups (``/.well-known/core``
lists that lookup with ``rt="core.rd-group"``).

Members (our reading; the RFC leaves it open): a link of a group registration that
carries an ``ep`` attribute names a member endpoint, with ``d`` its sector when it has one.
Its target may be the member's address (``<coap://[2001:db8::3]>;ep="lamp-1"``), its
registration resource (``</rd/Xk3...>;ep="lamp-1"``) or empty (``<>;ep="lamp-1"``, the
group's base; accepted only on links with ``ep``). Link PATCH names links by target, so
members added or removed one at a time need targets of their own. Endpoint lookups show
the links like any other, and :func:`group_members` reads them (``server.groups`` takes
them as the members of a device group whose ``rd_group`` names the registration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.store.rd_records import RdLink, RdRegistration

from .errors import bad_request
from .params import MAX_NAME_BYTES

#: The endpoint type of a group registration (RFC 9176 section 12.5).
RD_GROUP_TYPE = "core.rd-group"


def is_group(endpoint_types: Iterable[str]) -> bool:
    return RD_GROUP_TYPE in endpoint_types


def check_member_links(links: Sequence[RdLink]) -> None:
    """4.00 for a member link whose ``ep`` or ``d`` is not a valid name (empty, or over
    63 bytes as for registrations): a member that could never register."""
    for link in links:
        for name, value in link.params:
            if name in ("ep", "d"):
                if not value:
                    raise bad_request(f"group member link {shown(link.target, 24)}: {name} "
                                      "needs a value")
                if len(value.encode("utf-8")) > MAX_NAME_BYTES:
                    raise bad_request(f"group member link {shown(link.target, 24)}: {name} "
                                      f"longer than {MAX_NAME_BYTES} bytes")


def group_members(reg: RdRegistration) -> list[tuple[str, str | None]]:
    """The (ep, d) its member links name, in order, once each."""
    out: list[tuple[str, str | None]] = []
    seen: set[tuple[str, str | None]] = set()
    for link in reg.links:
        ep = d = None
        for name, value in link.params:
            if name == "ep" and ep is None:
                ep = value
            elif name == "d" and d is None:
                d = value
        if ep and (ep, d) not in seen:
            seen.add((ep, d))
            out.append((ep, d))
    return out
