"""``/api/registrations``: who is registered, and what their objects are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from aiolwm2m.gateway.directory import end_device_fields
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import Registration

from .deps import get_server
from .schemas import (
    ErrorOut,
    ObjectInfo,
    ObjectLinkOut,
    RegistrationOut,
    RegistrationPage,
    ResourceInfo,
)

router = APIRouter(prefix="/api/registrations", tags=["registrations"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]


def registration_out(server: LwM2MServer, reg: Registration) -> RegistrationOut:
    objects = [ObjectLinkOut(path=f"/{o.object_id}" + (f"/{o.instance_id}"
                                                        if o.instance_id is not None else ""),
                             version=o.version) for o in reg.objects]
    return RegistrationOut(
        endpoint=reg.endpoint, id=reg.id, address=f"{reg.address[0]}:{reg.address[1]}",
        transport=reg.transport, lifetime=reg.lifetime, lwm2m_version=reg.lwm2m_version,
        binding=reg.binding, queue_mode=reg.queue_mode, awake=server.queue.is_awake(reg),
        sms=reg.sms, identity=reg.identity, registered_at=reg.registered_at,
        updated_at=reg.updated_at, expires_at=reg.expires_at, root_path=reg.root_path,
        content_formats=list(reg.content_formats), objects=objects, extra=dict(reg.extra),
        end_devices=len(server.end_devices.by_gateway.get(reg.id, ()))
        if reg.id in server.end_devices.gateways else None, **end_device_fields(reg))


def select_registrations(server: LwM2MServer, endpoint: str | None, binding: str | None,
                         queue_mode: bool | None, lwm2m_version: str | None
                         ) -> list[Registration]:
    """The registrations the list's filters keep, by endpoint name (with several nodes:
    this node's; ``aiolwm2m.web.cluster_routing`` merges every node's)."""
    regs = sorted(server.registrations.values(), key=lambda r: r.endpoint)
    if endpoint:
        if endpoint.endswith("*"):
            regs = [r for r in regs if r.endpoint.startswith(endpoint[:-1])]
        else:
            regs = [r for r in regs if r.endpoint == endpoint]
    if binding:
        regs = [r for r in regs if r.binding == binding]
    if queue_mode is not None:
        regs = [r for r in regs if r.queue_mode == queue_mode]
    if lwm2m_version:
        regs = [r for r in regs if r.lwm2m_version == lwm2m_version]
    return regs


@router.get("", response_model=RegistrationPage, summary="List registrations")
async def list_registrations(
    server: ServerDep,
    endpoint: Annotated[str | None, Query(description="endpoint name; a trailing * matches "
                                          "a prefix")] = None,
    binding: Annotated[str | None, Query(pattern="^[UTSN]+$")] = None,
    queue_mode: bool | None = None,
    lwm2m_version: Annotated[str | None, Query(pattern=r"^1\.[0-9]$")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RegistrationPage:
    regs = select_registrations(server, endpoint, binding, queue_mode, lwm2m_version)
    page = regs[offset:offset + limit]
    return RegistrationPage(total=len(regs), offset=offset, limit=limit,
                            items=[registration_out(server, r) for r in page])


def _find(server: LwM2MServer, endpoint: str) -> Registration:
    reg = server.registrations.get(endpoint)
    if reg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no registration for endpoint {endpoint!r}")
    return reg


@router.get("/{endpoint}", response_model=RegistrationOut, summary="One registration",
            responses={404: {"model": ErrorOut}})
async def get_registration(server: ServerDep, endpoint: str) -> RegistrationOut:
    return registration_out(server, _find(server, endpoint))


@router.get("/{endpoint}/objects", response_model=list[ObjectInfo],
            responses={404: {"model": ErrorOut}},
            summary="The client's objects with their model (names, units, operations)")
async def get_objects(server: ServerDep, endpoint: str) -> list[ObjectInfo]:
    return object_infos(_find(server, endpoint), server.context(endpoint).model)


def object_infos(reg: Registration, model: ModelRegistry) -> list[ObjectInfo]:
    """The objects ``reg`` announced, described by ``model`` (its client's)."""
    instances: dict[int, list[int]] = {}
    versions: dict[int, str | None] = {}
    for o in reg.objects:
        instances.setdefault(o.object_id, [])
        if o.instance_id is not None:
            instances[o.object_id].append(o.instance_id)
        if o.version is not None:
            versions[o.object_id] = o.version
    out = []
    for oid in sorted(instances):
        # The version the client announced (no ver= means 1.0), not the newest one known:
        # its resources are what the client actually has.
        announced = versions.get(oid) or "1.0"
        om = model.get(oid, announced) or model.get(oid)
        resources = [] if om is None else [
            ResourceInfo(id=r.id, name=r.name, type=r.type.value, operations=r.operations.value,
                         multiple=r.multiple, mandatory=r.mandatory, units=r.units or None,
                         range=r.range_enumeration or None, description=r.description or None)
            for r in sorted(om.resources.values(), key=lambda r: r.id)]
        out.append(ObjectInfo(id=oid, name=om.name if om else None,
                              version=announced,
                              instances=sorted(instances[oid]),
                              multiple=om.multiple if om else None,
                              description=om.description if om else None,
                              resources=resources))
    return out
