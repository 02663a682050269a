"""NIDD on the product's HTTP server: the SCEF's callback endpoint, the REST API for NIDD
devices, groups and quotas (``/api/nidd``), and the ``lwm2m_nidd_*`` metrics.

``mount(app, server, protected)`` adds all three to the app ``aiolwm2m.web.app`` builds;
they answer 404 while the server runs without a SCEF.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, status
from fastapi.params import Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd.devices import NiddDevice, NiddGroup, check_identifier
from aiolwm2m.nidd.metrics import NiddCollector
from aiolwm2m.nidd.service import CALLBACK_PATH, NiddService
from aiolwm2m.nidd.t8_fields import T8FormatError
from aiolwm2m.server import LwM2MServer

from .schemas import ErrorOut

PROBLEM = "application/problem+json"


def _problem(code: int, title: str, detail: str) -> Response:
    return JSONResponse(m.problem(code, title, detail).to_json(), code, media_type=PROBLEM)


def _service(server: LwM2MServer) -> NiddService:
    service: NiddService | None = server.nidd
    if service is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "NIDD is not enabled (no SCEF)")
    return service


def callback_endpoint(server: LwM2MServer) -> Any:
    async def nidd_callback(request: Request) -> Response:
        service: NiddService | None = server.nidd
        if service is None:
            return _problem(404, "Not Found", "NIDD is not enabled")
        given = request.path_params.get("secret", "")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   service.secret.encode()):
            # From the path alone: the body is never read.
            server.refusals.refused(transport="nidd", reason="nidd-callback-unauthenticated",
                                    detail="callback with a wrong secret",
                                    peer=request.client.host if request.client else None)
            return _problem(401, "Unauthorized", "unknown callback")
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            return _problem(415, "Unsupported Media Type", "notifications are JSON")
        limit = service.settings.max_callback_body
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                server.refusals.refused(transport="nidd", reason="nidd-oversized",
                                        detail=f"callback body over {limit} bytes",
                                        peer="scef")
                return _problem(413, "Content Too Large", f"bodies are at most {limit} bytes")
            chunks.append(chunk)
        code, body = service.callbacks.handle(b"".join(chunks))
        if body is None:
            return Response(status_code=code)
        return JSONResponse(body, code, media_type=PROBLEM if code >= 300 else None)

    return nidd_callback


router = APIRouter(prefix="/api/nidd", tags=["nidd"], responses={
    404: {"model": ErrorOut, "description": "NIDD is not enabled, or no such device/group"},
    400: {"model": ErrorOut, "description": "a setting is not valid (the detail names it)"},
    409: {"model": ErrorOut, "description": "the endpoint belongs to another device"}})


def _bad(e: T8FormatError | ValueError) -> HTTPException:
    if isinstance(e, T8FormatError):
        return HTTPException(status.HTTP_400_BAD_REQUEST, f"{e.param}: {e.reason}")
    return HTTPException(status.HTTP_409_CONFLICT, str(e))


@router.get("", summary="NIDD status: the SCEF, configurations, downlink queue")
async def nidd_status(request: Request) -> dict[str, Any]:
    return _service(request.app.state.server).status()


@router.get("/devices", summary="NIDD devices (external identifier or MSISDN), with the "
            "ttl and quota in force and the allowance left")
async def list_devices(request: Request) -> list[dict[str, Any]]:
    service = _service(request.app.state.server)
    return [v for ident in service.directory.devices
            if (v := service.device_view(ident)) is not None]


@router.get("/devices/{ident}", summary="One NIDD device, its configuration and quota left")
async def get_device(ident: str, request: Request) -> dict[str, Any]:
    service = _service(request.app.state.server)
    view = service.device_view(ident)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such NIDD device")
    return view


@router.put("/devices/{ident}",
            summary="Add or change a NIDD device: endpoint binding, ttl (s), quota")
async def put_device(ident: str, request: Request,
                     body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    service = _service(request.app.state.server)
    try:
        device = NiddDevice.from_json(body, check_identifier(ident))
        service.put_device(device)
    except (T8FormatError, ValueError) as e:
        raise _bad(e) from None
    view = service.device_view(device.ident)
    assert view is not None
    return view


@router.delete("/devices/{ident}", status_code=204, summary="Remove a NIDD device")
async def delete_device(ident: str, request: Request) -> Response:
    if _service(request.app.state.server).remove_device(ident) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such NIDD device")
    return Response(status_code=204)


@router.get("/groups", summary="NIDD groups (external group identifiers)")
async def list_groups(request: Request) -> list[dict[str, Any]]:
    service = _service(request.app.state.server)
    return [v for gid in service.directory.groups
            if (v := service.group_view(gid)) is not None]


@router.get("/groups/{group_id}", summary="One NIDD group and its configuration")
async def get_group(group_id: str, request: Request) -> dict[str, Any]:
    view = _service(request.app.state.server).group_view(group_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such NIDD group")
    return view


@router.put("/groups/{group_id}", summary="Add or change a NIDD group: ttl (s), quota")
async def put_group(group_id: str, request: Request,
                    body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    service = _service(request.app.state.server)
    try:
        group = NiddGroup.from_json(body, group_id)
    except T8FormatError as e:
        raise _bad(e) from None
    service.put_group(group)
    view = service.group_view(group.external_group_id)
    assert view is not None
    return view


@router.delete("/groups/{group_id}", status_code=204, summary="Remove a NIDD group")
async def delete_group(group_id: str, request: Request) -> Response:
    if _service(request.app.state.server).remove_group(group_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such NIDD group")
    return Response(status_code=204)


def mount(app: FastAPI, server: LwM2MServer, protected: Sequence[Depends]) -> None:
    """The callback (authenticated by its path secret), the REST API (by API token) and
    the metrics."""
    app.add_route(CALLBACK_PATH + "/{secret}", callback_endpoint(server), methods=["POST"],
                  include_in_schema=False)
    app.include_router(router, dependencies=list(protected))
    app.state.metrics.registry.register(NiddCollector(server))
