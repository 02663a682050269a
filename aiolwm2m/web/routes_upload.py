"""``POST /api/clients/{endpoint}/write-opaque``: an Opaque resource written from the raw
request body, for values too large to send comfortably as base64 JSON (firmware images).

The body streams in under a limit of its own (``http_max_upload``) and is held in memory
while it goes to the device, block-wise when it does not fit one CoAP message.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from aiolwm2m.lwm2m.node_builder import build_node
from aiolwm2m.lwm2m.operations import WriteRequest
from aiolwm2m.lwm2m.values import ResourceType

from .deps import device_errors, parse_path
from .formats import parse_format
from .request_gate import allow_body
from .routes_operations import RESPONSES, EndpointName, Result, ServerDep, run
from .schemas import ErrorOut

router = APIRouter(prefix="/api/clients/{endpoint}", tags=["device management"])

RAW_BODY = {"requestBody": {"required": True, "description": "the value's bytes",
                            "content": {"application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}}}}}


@router.post("/write-opaque", response_model=Result, openapi_extra=RAW_BODY,
             responses={**RESPONSES, 413: {"model": ErrorOut,
                                           "description": "larger than http_max_upload"}},
             summary="Write an Opaque resource from a raw body (e.g. a firmware package)")
async def write_opaque(request: Request, server: ServerDep, endpoint: EndpointName,
                       path: Annotated[str, Query(examples=["/5/0/0"])],
                       format: Annotated[str | None, Query()] = None,
                       timeout: Annotated[float | None, Query(gt=0, le=600)] = None
                       ) -> Response:
    target = parse_path(path)
    if not (target.is_resource or target.is_resource_instance):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            "write-opaque targets a resource or resource instance path")
    try:
        fmt = parse_format(format)
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    # Everything that can be refused is refused before the body is read.
    with device_errors():
        model = server.context(endpoint).model
    rm = model.resource(target[0], target[2])
    if rm is not None and rm.type is not ResourceType.OPAQUE:
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"{target} is {rm.type.value}, not Opaque")
    allow_body(request.scope, server.config.http_max_upload)
    chunks = [chunk async for chunk in request.stream()]
    value = b"".join(chunks)
    del chunks
    with device_errors():
        node = build_node(model, target, value)
    return await run(server, endpoint, WriteRequest(target, node, True, fmt), timeout)
