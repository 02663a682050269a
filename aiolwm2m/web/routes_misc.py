"""``/api/requests/{id}`` (queued requests) and ``/api/security`` (credentials)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import SecurityInfo

from .deps import get_server
from .routes_operations import queued_out
from .schemas import ErrorOut, QueuedOut, SecurityIn, SecurityOut

ServerDep = Annotated[LwM2MServer, Depends(get_server)]
requests_router = APIRouter(prefix="/api/requests", tags=["queued requests"])
security_router = APIRouter(prefix="/api/security", tags=["security"])


@requests_router.get("/{request_id}", response_model=QueuedOut,
                     responses={404: {"model": ErrorOut}},
                     summary="A queued request's state and, once done, its result",
                     description="Queued requests are delivered at least once: one the "
                     "server was sending when it stopped is still `pending` after the "
                     "restart and is sent again when the client wakes. A request queued "
                     "with `at_most_once=true` is `in-flight` while it is sent and is never "
                     "sent twice: found `in-flight` after a restart, it becomes `failed` "
                     "with `result.outcome` \"unknown\" (the client may or may not have "
                     "carried it out).")
async def get_request(server: ServerDep, request_id: str) -> QueuedOut:
    q = await server.queued_request(request_id)
    if q is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no queued request {request_id!r}")
    return queued_out(q)


def security_out(info: SecurityInfo) -> SecurityOut:
    return SecurityOut(
        endpoint=info.endpoint, mode=info.mode,
        psk_identity=info.psk_identity.decode("utf-8", "replace")
        if info.psk_identity is not None else None,
        rpk_public_key=info.rpk_public_key.hex() if info.rpk_public_key is not None else None,
        x509_identity=info.x509_identity)


@security_router.get("", response_model=list[SecurityOut], summary="List credentials")
async def list_security(server: ServerDep) -> list[SecurityOut]:
    return [security_out(i) for i in await server.stores.security.all()]


@security_router.get("/{endpoint}", response_model=SecurityOut,
                     responses={404: {"model": ErrorOut}}, summary="One endpoint's credentials")
async def get_security(server: ServerDep, endpoint: str) -> SecurityOut:
    info = server.stores.security.get(endpoint)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no credentials for {endpoint!r}")
    return security_out(info)


@security_router.put("/{endpoint}", response_model=SecurityOut,
                     responses={400: {"model": ErrorOut}, 409: {"model": ErrorOut}},
                     summary="Create or replace an endpoint's credentials (keys are write-only)")
async def put_security(server: ServerDep, endpoint: str, body: SecurityIn) -> SecurityOut:
    try:
        info = SecurityInfo.from_text(
            endpoint, psk_identity=body.psk_identity, psk_key=body.psk_key,
            rpk_public_key=body.rpk_public_key, x509_identity=body.x509_identity)
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    try:
        await server.stores.security.put(info)
    except ValueError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return security_out(info)


@security_router.delete("/{endpoint}", status_code=status.HTTP_204_NO_CONTENT,
                        responses={404: {"model": ErrorOut}}, summary="Remove credentials")
async def delete_security(server: ServerDep, endpoint: str) -> None:
    if await server.stores.security.remove(endpoint) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no credentials for {endpoint!r}")
