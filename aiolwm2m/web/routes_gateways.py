"""End devices behind LwM2M gateways in the REST API.

- ``GET /api/registrations/{gateway}/devices``: the end devices the server keeps behind a
  gateway (from its ``/25``), each as a registration with ``gateway``, ``prefix`` and
  ``device_id``; ``.../devices/{prefix}`` one of them, ``.../devices/{prefix}/objects`` its
  objects with their model.
- ``/api/clients/{gateway}/devices/{prefix}/...``: every device operation of
  ``/api/clients/{endpoint}/...`` (read, write, observe, composite, write-opaque, values...)
  on that end device, with the same parameters and answers. They are the very route
  functions, called with the end device's name (:class:`~aiolwm2m.gateway.EndDeviceName`),
  so they cannot drift apart.

An unknown gateway or prefix is 404; a prefix that cannot be one (digits only, characters
outside ``[A-Za-z0-9._~-]``) is 400.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.routing import APIRoute

from aiolwm2m.gateway.names import EndDeviceName
from aiolwm2m.lwm2m.errors import InvalidPath
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import Registration

from .deps import device_errors, get_server
from .routes_registrations import object_infos, registration_out
from .schemas import ErrorOut, ObjectInfo, RegistrationOut, RegistrationPage

router = APIRouter(prefix="/api/registrations/{endpoint}/devices", tags=["gateways"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]
GatewayName = Annotated[str, PathParam(description="the gateway's endpoint name",
                                       examples=["gw-1"])]
Prefix = Annotated[str, PathParam(description="the end device's prefix (/25/x/1)",
                                  examples=["dev1"])]
_CLIENTS = "/api/clients/{endpoint}"
_DEVICE = "/api/clients/{endpoint}/devices/{prefix}"


def end_device_name(gateway: str, prefix: str) -> EndDeviceName:
    try:
        return EndDeviceName(gateway, prefix)
    except InvalidPath as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, e.reason) from None


def _gateway(server: LwM2MServer, endpoint: str) -> Registration:
    with device_errors():
        return server.registration(endpoint)


def _end_device(server: LwM2MServer, endpoint: str, prefix: str) -> Registration:
    with device_errors():
        return server.registration(end_device_name(endpoint, prefix))


@router.get("", response_model=RegistrationPage, responses={404: {"model": ErrorOut}},
            summary="The end devices behind a gateway")
async def list_end_devices(server: ServerDep, endpoint: GatewayName,
                           offset: Annotated[int, Query(ge=0)] = 0,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100
                           ) -> RegistrationPage:
    gateway = _gateway(server, endpoint)
    records = server.end_devices.records(gateway.id)
    page = records[offset:offset + limit]
    return RegistrationPage(total=len(records), offset=offset, limit=limit,
                            items=[registration_out(server, server.end_devices.view(r))
                                   for r in page])


@router.get("/{prefix}", response_model=RegistrationOut, responses={
    400: {"model": ErrorOut}, 404: {"model": ErrorOut}}, summary="One end device")
async def get_end_device(server: ServerDep, endpoint: GatewayName, prefix: Prefix
                         ) -> RegistrationOut:
    return registration_out(server, _end_device(server, endpoint, prefix))


@router.get("/{prefix}/objects", response_model=list[ObjectInfo], responses={
    400: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    summary="An end device's objects with their model")
async def get_end_device_objects(server: ServerDep, endpoint: GatewayName, prefix: Prefix
                                 ) -> list[ObjectInfo]:
    reg = _end_device(server, endpoint, prefix)
    return object_infos(reg, server.registry.context(reg).model)


def end_device_routes(*routers: APIRouter) -> APIRouter:
    """The routes of ``routers`` under ``/api/clients/{endpoint}`` again, under
    ``/api/clients/{endpoint}/devices/{prefix}``, for end devices."""
    mirror = APIRouter(tags=["gateways"])
    for source in routers:
        for route in source.routes:
            if not isinstance(route, APIRoute) or not route.path.startswith(_CLIENTS):
                continue
            suffix = route.path[len(_CLIENTS):]
            # A prefix that cannot be one is 400, an unknown end device 404.
            responses = {400: {"model": ErrorOut}, 404: {"model": ErrorOut},
                         **route.responses}
            mirror.add_api_route(
                _DEVICE + suffix, _for_end_device(route.endpoint),
                methods=sorted(route.methods or ()), response_model=route.response_model,
                status_code=route.status_code, responses=responses,
                summary=f"{route.summary or route.name} (end device)",
                description=route.description, name=f"{route.name}_end_device",
                response_class=route.response_class, openapi_extra=route.openapi_extra)
    return mirror


def _for_end_device(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``handler`` with a ``prefix`` path parameter, called with the end device's name as
    its ``endpoint``."""
    hints = typing.get_type_hints(handler, include_extras=True)
    signature = inspect.signature(handler)
    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                            annotation=hints.get(p.name, p.annotation))
                  for p in signature.parameters.values()]
    parameters.append(inspect.Parameter("prefix", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Prefix))

    async def wrapper(**kwargs: Any) -> Any:
        prefix = kwargs.pop("prefix")
        kwargs["endpoint"] = end_device_name(kwargs["endpoint"], prefix)
        return await handler(**kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=hints.get("return", signature.empty))
    wrapper.__name__ = f"{handler.__name__}_end_device"
    wrapper.__doc__ = handler.__doc__
    return wrapper
