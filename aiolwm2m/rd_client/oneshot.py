"""One lookup or one removal from a connection of its own, for scripts and the command line.

::

    links = await rd_lookup("coap://rd.example", "res", [("rt", "temperature")], count=20)
    await rd_remove("coap://rd.example/rd/4")

A lookup URI with a path is the lookup resource itself; without one the resource is
discovered (``rt=core.rd-lookup-ep`` or ``core.rd-lookup-res``). Secure URIs take RD
credentials as :class:`~.registerer.RdRegisterer` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from aiolwm2m.client.account_security import AccountSecurity
from aiolwm2m.client.server_link import check_credentials
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import Link
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import CoapUri, parse_uri
from aiolwm2m.security.credentials import Credentials

from .connection import RdConnection, account_of, rd_target
from .lookup import find_registration, interface_path, lookup_links
from .messages import RT_LOOKUP, check, check_paging, location_text, remove_request

LookupKind = Literal["ep", "res"]


async def _open(uri: CoapUri, security: AccountSecurity | Credentials | None,
                host: str | None, transmission: TransmissionParameters) -> RdConnection:
    account = account_of(security)
    check_credentials(rd_target(uri, account))
    return await RdConnection.open(uri, account, host=host, params=transmission)


async def rd_lookup(rd_uri: str, kind: LookupKind = "ep",
                    filters: Iterable[tuple[str, str | None]] = (), *,
                    page: int | None = None, count: int | None = None,
                    security: AccountSecurity | Credentials | None = None,
                    host: str | None = None,
                    transmission: TransmissionParameters = DEFAULT_PARAMETERS,
                    timeout: float | None = None) -> list[Link]:
    """Endpoint (``ep``) or resource (``res``) lookup with ``filters`` ANDed
    (``("rt", "temp*")``: a trailing ``*`` matches any suffix) and paging."""
    if kind not in RT_LOOKUP:
        raise ValueError(f"lookup kind is 'ep' or 'res', not {kind!r}")
    check_paging(page, count)
    uri = parse_uri(rd_uri)
    given = [(k, v or None) for k, _, v in (q.partition("=") for q in uri.query)]
    conn = await _open(uri, security, host, transmission)
    try:
        path = uri.path or await interface_path(conn, RT_LOOKUP[kind], timeout)
        return await lookup_links(conn, path, [*given, *filters], page=page, count=count,
                                  timeout=timeout)
    finally:
        await conn.close()


async def rd_remove(location_uri: str, *,
                    security: AccountSecurity | Credentials | None = None,
                    host: str | None = None,
                    transmission: TransmissionParameters = DEFAULT_PARAMETERS,
                    timeout: float | None = None) -> None:
    """``DELETE`` the registration resource ``location_uri`` (e.g. ``coap://rd/rd/4``);
    RdRejected with the RD's code when it is not 2.02."""
    uri = parse_uri(location_uri)
    if not uri.path:
        raise ValueError("give the registration's location, e.g. coap://rd.example/rd/4")
    conn = await _open(uri, security, host, transmission)
    try:
        response = await conn.request(remove_request(uri.path), timeout)
        check("removal", response, Code.DELETED)
    finally:
        await conn.close()


async def rd_remove_endpoint(rd_uri: str, endpoint: str, sector: str | None = None, *,
                             security: AccountSecurity | Credentials | None = None,
                             host: str | None = None,
                             transmission: TransmissionParameters = DEFAULT_PARAMETERS,
                             timeout: float | None = None) -> str:
    """Remove the registration of ``endpoint`` (in ``sector``) that endpoint lookup finds;
    returns its location (``""``: the RD knows no such endpoint, or offers no lookup)."""
    uri = parse_uri(rd_uri)
    conn = await _open(uri, security, host, transmission)
    try:
        location = await find_registration(conn, endpoint, sector, timeout)
        if not location:
            return ""
        response = await conn.request(remove_request(location), timeout)
        check("removal", response, Code.DELETED)
        return location_text(location)
    finally:
        await conn.close()
