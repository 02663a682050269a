"""``/api/bootstrap``: the Bootstrap-Server's per-endpoint configurations and sessions.

Bodies use the same shape as the bootstrap configuration file (see
:mod:`aiolwm2m.bootstrap.configuration`); secret keys are write-only and come back as
``"(hidden)"``. A configuration that provisions a PSK, RPK or X.509 server account makes
the LwM2M server of this process accept exactly that account for the endpoint, in the same
PUT; DELETE removes it with ``?remove_credentials=true``. Both answers say what the
security store now holds (``credentials``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from aiolwm2m.bootstrap.configuration import (
    ConfigurationConflict,
    ConfigurationError,
    EndpointConfig,
)
from aiolwm2m.bootstrap.server import BootstrapServer
from aiolwm2m.bootstrap.server_accounts import CredentialsChange, principal
from aiolwm2m.store.records import SecurityInfo

from .schemas import ErrorOut

router = APIRouter(prefix="/api/bootstrap", tags=["bootstrap"])
EndpointName = Annotated[str, PathParam(description="endpoint name, or * for the default",
                                        examples=["dev-1"])]
HIDDEN = "(hidden)"


class CredentialsOut(BaseModel):
    """The endpoint's entry in the LwM2M server's security store after the change:
    identities in the form registrations are bound to (``psk:dev-1``, ``rpk:<sha256>``,
    ``x509:<name>``); keys never appear."""

    installed: str | None = Field(
        default=None, description="the account the LwM2M server now accepts for the "
        "endpoint, as the configuration provisions it")
    replaced: str | None = Field(default=None,
                                 description="credentials the store held before")
    removed: str | None = Field(default=None,
                                description="credentials removed with the configuration")
    kept: str | None = Field(
        default=None, description="credentials the LwM2M server still requires of the "
        "endpoint, though no configuration provisions them")
    note: str | None = None


class BootstrapConfigOut(BaseModel):
    endpoint: str
    config: dict[str, Any]
    credentials: CredentialsOut | None = Field(
        default=None, description="what the PUT did to the LwM2M server's security store")


class BootstrapRemovedOut(BaseModel):
    endpoint: str
    credentials: CredentialsOut


class BootstrapSessionOut(BaseModel):
    id: str
    endpoint: str
    state: str = Field(description="running, finished, failed, or refused (the request was "
                       "turned down; reason says why)")
    started_at: float
    finished_at: float | None = None
    error: str | None = None
    reason: str | None = Field(
        default=None, description="for a refused request: bootstrap-nosec, "
        "bootstrap-wrong-identity, bootstrap-unknown-endpoint, bootstrap-bad-request")
    address: str | None = None


def bootstrap_server(request: Request) -> BootstrapServer:
    bs: BootstrapServer | None = request.app.state.bootstrap
    if bs is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "no bootstrap server runs in this process")
    return bs


def redacted(config: EndpointConfig) -> dict[str, Any]:
    """The configuration without its secrets: the keys written to devices and the key a
    device authenticates to the Bootstrap-Server with."""
    d = config.to_dict()
    for sec in d.get("security", []):
        if sec.get("secret_key"):
            sec["secret_key"] = HIDDEN
    creds = d.get("bootstrap_credentials")
    if isinstance(creds, dict) and creds.get("psk_key"):
        creds["psk_key"] = HIDDEN
    return d


NOT_HERE: dict[int | str, dict[str, Any]] = {404: {
    "model": ErrorOut,
    "description": "no such configuration, or no bootstrap server in this process"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorOut,
    "description": "credentials that belong to another endpoint, or bootstrap credentials "
                   "no running secure bootstrap listener could check"}}


def _identity(info: SecurityInfo | None) -> str | None:
    return principal(info) if info is not None else None


def credentials_out(change: CredentialsChange) -> CredentialsOut:
    return CredentialsOut(installed=_identity(change.installed),
                          replaced=_identity(change.replaced),
                          removed=_identity(change.removed), kept=_identity(change.kept),
                          note=change.note or None)


@router.get("", response_model=list[BootstrapConfigOut], responses=NOT_HERE,
            summary="List bootstrap configurations")
async def list_configs(request: Request) -> list[BootstrapConfigOut]:
    bs = bootstrap_server(request)
    return [BootstrapConfigOut(endpoint=ep, config=redacted(c))
            for ep, c in sorted(bs.configs.items())]


@router.get("/{endpoint}", response_model=BootstrapConfigOut, responses=NOT_HERE,
            summary="One endpoint's bootstrap configuration")
async def get_config(request: Request, endpoint: EndpointName) -> BootstrapConfigOut:
    bs = bootstrap_server(request)
    config = bs.configs.get(endpoint)
    if config is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no bootstrap configuration for {endpoint!r}")
    return BootstrapConfigOut(endpoint=endpoint, config=redacted(config))


@router.put("/{endpoint}", response_model=BootstrapConfigOut,
            responses={**NOT_HERE, **CONFLICT, 400: {"model": ErrorOut}},
            summary="Create or replace an endpoint's bootstrap configuration, and install "
                    "the server account it provisions")
async def put_config(request: Request, endpoint: EndpointName,
                     body: Annotated[dict[str, Any], Body(examples=[{
                         "security": [{"instance_id": 1, "server_uri": "coap://[::1]:5683",
                                       "security_mode": "nosec", "short_server_id": 1}],
                         "servers": [{"instance_id": 0, "short_server_id": 1,
                                      "lifetime": 300, "binding": "U"}]}])]
                     ) -> BootstrapConfigOut:
    bs = bootstrap_server(request)
    try:
        config = EndpointConfig.from_dict(body)
    except (ConfigurationError, ValueError, TypeError, KeyError) as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"invalid bootstrap configuration: {e}") from None
    try:
        change = await bs.set_config(endpoint, config)
    except ConfigurationConflict as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except ConfigurationError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"invalid bootstrap configuration: {e}") from None
    return BootstrapConfigOut(endpoint=endpoint, config=redacted(config),
                              credentials=credentials_out(change))


@router.delete("/{endpoint}", response_model=BootstrapRemovedOut, responses=NOT_HERE,
               summary="Remove an endpoint's bootstrap configuration (and, when asked, the "
                       "server account it provisioned)")
async def delete_config(request: Request, endpoint: EndpointName,
                        remove_credentials: Annotated[bool, Query(
                            description="also remove the server account the configuration "
                                        "provisioned from the LwM2M server's security "
                                        "store")] = False) -> BootstrapRemovedOut:
    bs = bootstrap_server(request)
    change = await bs.remove_config(endpoint, remove_credentials=remove_credentials)
    if change is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no bootstrap configuration for {endpoint!r}")
    return BootstrapRemovedOut(endpoint=endpoint, credentials=credentials_out(change))


@router.get("/{endpoint}/sessions", response_model=list[BootstrapSessionOut],
            responses=NOT_HERE, summary="An endpoint's recent bootstrap sessions")
async def sessions(request: Request, endpoint: EndpointName) -> list[BootstrapSessionOut]:
    bs = bootstrap_server(request)
    records = await bs.stores.sessions.for_endpoint(endpoint)
    return [BootstrapSessionOut(id=r.id, endpoint=r.endpoint, state=r.state,
                                started_at=r.started_at, finished_at=r.finished_at,
                                error=r.error, reason=r.reason, address=r.address)
            for r in records]
