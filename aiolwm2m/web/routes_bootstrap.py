"""``/api/bootstrap``: the Bootstrap-Server's per-endpoint configurations and sessions.

Bodies use the same shape as the bootstrap configuration file (see
:mod:`aiolwm2m.bootstrap.configuration`); secret keys are write-only and come back as
``"(hidden)"``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel

from aiolwm2m.bootstrap.configuration import ConfigurationError, EndpointConfig
from aiolwm2m.bootstrap.server import BootstrapServer

from .schemas import ErrorOut

router = APIRouter(prefix="/api/bootstrap", tags=["bootstrap"])
EndpointName = Annotated[str, PathParam(description="endpoint name, or * for the default",
                                        examples=["dev-1"])]
HIDDEN = "(hidden)"


class BootstrapConfigOut(BaseModel):
    endpoint: str
    config: dict[str, Any]


class BootstrapSessionOut(BaseModel):
    id: str
    endpoint: str
    state: str
    started_at: float
    finished_at: float | None = None
    error: str | None = None


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
            responses={**NOT_HERE, 400: {"model": ErrorOut}},
            summary="Create or replace an endpoint's bootstrap configuration")
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
    await bs.set_config(endpoint, config)
    return BootstrapConfigOut(endpoint=endpoint, config=redacted(config))


@router.delete("/{endpoint}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_HERE,
               summary="Remove an endpoint's bootstrap configuration")
async def delete_config(request: Request, endpoint: EndpointName) -> None:
    bs = bootstrap_server(request)
    if not await bs.remove_config(endpoint):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no bootstrap configuration for {endpoint!r}")


@router.get("/{endpoint}/sessions", response_model=list[BootstrapSessionOut],
            responses=NOT_HERE, summary="An endpoint's recent bootstrap sessions")
async def sessions(request: Request, endpoint: EndpointName) -> list[BootstrapSessionOut]:
    bs = bootstrap_server(request)
    records = await bs.stores.sessions.for_endpoint(endpoint)
    return [BootstrapSessionOut(id=r.id, endpoint=r.endpoint, state=r.state,
                                started_at=r.started_at, finished_at=r.finished_at,
                                error=r.error) for r in records]
