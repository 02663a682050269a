"""Finding an RD's interfaces and looking registrations up, over an open connection.

The interfaces are found by resource type in the RD's /.well-known/core (RFC 9176 section
4): ``core.rd`` (registration), ``core.rd-lookup-ep`` and ``core.rd-lookup-res``. Their
paths differ between RDs (``/rd`` and ``/rd-lookup/ep`` here, ``/resourcedirectory/`` and
``/endpoint-lookup/`` in aiocoap's), which is why they are discovered, not assumed.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiolwm2m.coap.linkformat import Link

from .connection import RdConnection
from .messages import (
    RT_LOOKUP,
    RdProtocolError,
    RdRejected,
    discovery_request,
    lookup_request,
    parse_links,
    path_of,
    resource_path,
)


async def interface_path(conn: RdConnection, resource_type: str,
                         timeout: float | None = None) -> tuple[str, ...]:
    """The path of the RD's resource of ``resource_type`` (RdProtocolError: none)."""
    response = await conn.request(discovery_request(resource_type), timeout)
    return resource_path(response, resource_type)


async def lookup_links(conn: RdConnection, path: tuple[str, ...],
                       filters: Iterable[tuple[str, str | None]] = (), *,
                       page: int | None = None, count: int | None = None,
                       timeout: float | None = None) -> list[Link]:
    """The links a lookup at ``path`` answers (RdRejected: the RD refused the query)."""
    response = await conn.request(lookup_request(path, filters, page=page, count=count),
                                  timeout)
    return parse_links(response, "lookup")


async def find_registration(conn: RdConnection, endpoint: str, sector: str | None,
                            timeout: float | None = None) -> tuple[str, ...]:
    """The registration resource of ``endpoint`` (in ``sector``) by endpoint lookup, for
    a simple registration, which the RD answers without a location; ``()`` when the RD
    offers no lookup or knows no such endpoint."""
    try:
        path = await interface_path(conn, RT_LOOKUP["ep"], timeout)
    except (RdProtocolError, RdRejected):
        return ()
    filters: list[tuple[str, str | None]] = [("ep", endpoint)]
    if sector is not None:
        filters.append(("d", sector))
    for link in await lookup_links(conn, path, filters, timeout=timeout):
        if link.get("ep") == endpoint:
            return path_of(link.target)
    return ()
