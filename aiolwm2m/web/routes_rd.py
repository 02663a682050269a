"""``/api/rd``: the Resource Directory's lookups and registrations in JSON.

``GET /api/rd/ep`` and ``GET /api/rd/res`` take the same filters as the CoAP lookups
(``/rd-lookup/ep?ep=meter-*&d=plant-1``: any attribute, a trailing ``*`` for a prefix,
several ANDed, ``page`` and ``count``) and answer what they would, as JSON (operators see
every registration: the lookup policy applies to CoAP peers).

``/api/rd/policy`` reads and replaces the authorisation policy (``aiolwm2m.rd.policy``);
``/api/rd/policy/identities/{principal}`` one identity's rule. A refused document changes
nothing (400 naming what is wrong); an accepted one is stored before it applies.
"""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from aiolwm2m.rd.errors import RdError
from aiolwm2m.rd.lookup import Entry, parse_lookup
from aiolwm2m.rd.policy import (
    MAX_IDENTITIES,
    PolicyError,
    RdPolicy,
    parse_policy,
    policy_to_dict,
)
from aiolwm2m.rd.service import ResourceDirectory
from aiolwm2m.rd.uri import resolve
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.rd_records import RdLink, RdRegistration

from .deps import get_server
from .schemas import ErrorOut

router = APIRouter(prefix="/api/rd", tags=["resource directory"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]
PageQuery = Annotated[int | None, Query(ge=0, le=1 << 31, description="page number "
                                        "(needs count)")]
CountQuery = Annotated[int | None, Query(ge=1, description="links per page (at most the "
                                         "server's rd_max_lookup_results)")]
_FILTERS = ("any other query parameter is a filter: `name=value`, `name=prefix*`, or "
            "`name` alone for presence; several are ANDed")


class AttributeOut(BaseModel):
    name: str
    value: str | None = None


class EndpointOut(BaseModel):
    #: The registration resource (``/rd/{id}``).
    path: str
    endpoint: str | None
    sector: str | None
    base: str
    endpoint_types: list[str]
    #: Every registration attribute (ep, d, base, et and the others), in order.
    attributes: list[AttributeOut]
    lwm2m: bool


class ResourceOut(BaseModel):
    href: str
    #: The target as the endpoint registered it (relative to ``base``).
    target: str
    attributes: list[AttributeOut]
    endpoint: str | None
    registration: str


class LinkOut(BaseModel):
    target: str
    attributes: list[AttributeOut]


class RdRegistrationOut(BaseModel):
    id: str
    endpoint: str
    sector: str | None
    lifetime: int
    base: str
    base_explicit: bool
    endpoint_types: list[str]
    extra: list[AttributeOut]
    links: list[LinkOut]
    transport: str
    address: str
    identity: str | None
    registered_at: float
    updated_at: float
    expires_at: float


def _rd(server: LwM2MServer) -> ResourceDirectory:
    if server.rd is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the resource directory is off")
    return server.rd


def _attrs(params: tuple[tuple[str, str | None], ...]) -> list[AttributeOut]:
    return [AttributeOut(name=n, value=v) for n, v in params]


def _first(entry: Entry, name: str) -> str | None:
    return next((v for n, v in entry.attributes if n == name), None)


def endpoint_out(entry: Entry) -> EndpointOut:
    types = [v for n, v in entry.attributes if n == "et" and v is not None]
    return EndpointOut(path=entry.path, endpoint=_first(entry, "ep"),
                       sector=_first(entry, "d"), base=entry.base, endpoint_types=types,
                       attributes=_attrs(entry.attributes), lwm2m="oma.lwm2m" in types)


def resource_out(entry: Entry, link: RdLink) -> ResourceOut:
    return ResourceOut(href=resolve(entry.base, link.target), target=link.target,
                       attributes=_attrs(link.params), endpoint=_first(entry, "ep"),
                       registration=entry.path)


def registration_out(reg: RdRegistration) -> RdRegistrationOut:
    return RdRegistrationOut(
        id=reg.id, endpoint=reg.endpoint, sector=reg.sector, lifetime=reg.lifetime,
        base=reg.base, base_explicit=reg.base_explicit,
        endpoint_types=list(reg.endpoint_types), extra=_attrs(reg.extra),
        links=[LinkOut(target=link.target, attributes=_attrs(link.params))
               for link in reg.links],
        transport=reg.transport, address=f"{reg.address[0]}:{reg.address[1]}",
        identity=reg.identity, registered_at=reg.registered_at, updated_at=reg.updated_at,
        expires_at=reg.expires_at)


def _query(request: Request, rd: ResourceDirectory) -> list[str]:
    items = [f"{k}={v}" if v != "" or k in ("page", "count") else k
             for k, v in request.query_params.multi_items() if k != "access_token"]
    try:
        parse_lookup(items, max_results=rd.limits.max_lookup_results)
    except RdError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, e.message) from None
    return items


@router.get("/ep", response_model=list[EndpointOut], responses={400: {"model": ErrorOut}},
            summary="Endpoint lookup", description=_FILTERS)
async def lookup_endpoints(server: ServerDep, request: Request, page: PageQuery = None,
                           count: CountQuery = None) -> list[EndpointOut]:
    rd = _rd(server)
    query = parse_lookup(_query(request, rd), max_results=rd.limits.max_lookup_results)
    return [endpoint_out(e) for e in rd.directory.lookup_endpoints(query)]


@router.get("/res", response_model=list[ResourceOut], responses={400: {"model": ErrorOut}},
            summary="Resource lookup", description=_FILTERS)
async def lookup_resources(server: ServerDep, request: Request, page: PageQuery = None,
                           count: CountQuery = None) -> list[ResourceOut]:
    rd = _rd(server)
    query = parse_lookup(_query(request, rd), max_results=rd.limits.max_lookup_results)
    return [resource_out(e, link) for e, link in rd.directory.lookup_resources(query)]


@router.get("/registrations", response_model=list[RdRegistrationOut],
            summary="Generic RD registrations (LwM2M ones are at /api/registrations)")
async def list_rd_registrations(
        server: ServerDep, offset: Annotated[int, Query(ge=0, le=1 << 31)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[RdRegistrationOut]:
    regs = itertools.islice(_rd(server).directory.by_id.values(), offset, offset + limit)
    return [registration_out(r) for r in regs]


@router.get("/registrations/{registration_id}", response_model=RdRegistrationOut,
            responses={404: {"model": ErrorOut}}, summary="One generic RD registration")
async def get_rd_registration(server: ServerDep, registration_id: str) -> RdRegistrationOut:
    reg = _rd(server).get(registration_id)
    if reg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such RD registration")
    return registration_out(reg)


@router.delete("/registrations/{registration_id}", status_code=204,
               responses={404: {"model": ErrorOut}}, summary="Remove an RD registration")
async def delete_rd_registration(server: ServerDep, registration_id: str) -> None:
    if await _rd(server).remove(registration_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such RD registration")


# -- the authorisation policy -----------------------------------------------------------------


class IdentityRuleBody(BaseModel):
    """What one identity (a principal such as ``psk:gw-1``, or ``*`` for every
    authenticated peer without a rule of its own) may do."""

    model_config = ConfigDict(extra="forbid")
    endpoints: list[str] | None = Field(
        None, description="ep names it may register: names, or prefixes ending in `*` "
        "(absent: any name not bound to other credentials)", examples=[["meter-*"]])
    sectors: list[str] | None = Field(
        None, description="sectors (d) it may register in; \"\" is no sector (absent: any)",
        examples=[["plant-1"]])
    lookup: list[str] = Field(
        default_factory=list, description="sectors its lookups see besides its own "
        "(with sector_lookup)")


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anonymous_register: bool = Field(True, description="NoSec peers may register")
    anonymous_lookup: bool = Field(True, description="NoSec peers may look up")
    sector_lookup: bool = Field(
        False, description="lookups see registrations without a sector and those in the "
        "asker's own or granted sectors (anonymous peers: only those without a sector)")
    bind_credentials: bool = Field(
        True, description="a name with credentials in the security store is registered only "
        "over a session authenticated with them")
    identities: dict[str, IdentityRuleBody] = Field(
        default_factory=dict, description="rules by principal (psk:..., rpk:<sha-256 hex>, "
        "x509:<name>, or *)")


class PolicyOut(PolicyBody):
    #: Where the policy in force came from: "default", "config" (the server's TOML, at
    #: every start) or "api".
    source: str
    updated_at: float | None


def _policy_out(rd: ResourceDirectory) -> PolicyOut:
    return PolicyOut.model_validate({**policy_to_dict(rd.policy), "source": rd.policy_source,
                                     "updated_at": rd.policy_updated_at})


def _checked(document: object) -> RdPolicy:
    try:
        return parse_policy(document)
    except PolicyError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None


POLICY_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "the policy is not valid; nothing changed"},
    404: {"model": ErrorOut}}


@router.get("/policy", response_model=PolicyOut, responses={404: {"model": ErrorOut}},
            summary="The RD's authorisation policy")
async def get_policy(server: ServerDep) -> PolicyOut:
    return _policy_out(_rd(server))


@router.put("/policy", response_model=PolicyOut, responses=POLICY_ERRORS,
            summary="Replace the RD's authorisation policy")
async def put_policy(server: ServerDep, body: PolicyBody) -> PolicyOut:
    rd = _rd(server)
    await rd.set_policy(_checked(body.model_dump(exclude_none=True)))
    return _policy_out(rd)


@router.delete("/policy", response_model=PolicyOut, responses={404: {"model": ErrorOut}},
               summary="Back to the default policy")
async def delete_policy(server: ServerDep) -> PolicyOut:
    rd = _rd(server)
    await rd.set_policy(None)
    return _policy_out(rd)


@router.put("/policy/identities/{principal:path}", response_model=PolicyOut,
            responses=POLICY_ERRORS, summary="Set one identity's rule")
async def put_identity_rule(server: ServerDep, principal: str, body: IdentityRuleBody
                            ) -> PolicyOut:
    rd = _rd(server)
    document = policy_to_dict(rd.policy)
    if principal not in document["identities"] and (
            len(document["identities"]) >= MAX_IDENTITIES):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"the policy already names {MAX_IDENTITIES} identities")
    document["identities"][principal] = body.model_dump(exclude_none=True)
    await rd.set_policy(_checked(document))
    return _policy_out(rd)


@router.delete("/policy/identities/{principal:path}", response_model=PolicyOut,
               responses={404: {"model": ErrorOut}}, summary="Remove one identity's rule")
async def delete_identity_rule(server: ServerDep, principal: str) -> PolicyOut:
    rd = _rd(server)
    document = policy_to_dict(rd.policy)
    if document["identities"].pop(principal, None) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no rule for that identity")
    await rd.set_policy(_checked(document))
    return _policy_out(rd)
