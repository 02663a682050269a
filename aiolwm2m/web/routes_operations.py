"""``/api/clients/{endpoint}/...``: device management and information reporting.

Every operation answers 200 with the client's CoAP response code in the body (a 4.04 from
the device is a successful API call), or 202 with a request id when the client sleeps in
queue mode; 404 for an unknown endpoint, 400 for an invalid path or value, 504 when the
device does not answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi import Path as PathParam

from aiolwm2m.lwm2m.attributes import parse_write_attributes
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.node_builder import build_node
from aiolwm2m.lwm2m.operations import (
    CreateRequest,
    DeleteRequest,
    DiscoverRequest,
    ExecuteRequest,
    ObserveCompositeRequest,
    ObserveRequest,
    Operation,
    ReadCompositeRequest,
    ReadRequest,
    WriteAttributesRequest,
    WriteCompositeRequest,
    WriteRequest,
)
from aiolwm2m.lwm2m.path import ROOT
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import QueuedRequest

from .deps import device_errors, get_server, parse_path
from .formats import format_name, parse_format
from .json_values import opaque_from_json
from .result_json import json_response, operation_result, queued_request
from .schemas import (
    AttributesBody,
    CancelBody,
    CompositeWriteBody,
    CreateBody,
    ErrorOut,
    ExecuteBody,
    ObservationOut,
    OperationResult,
    PathBody,
    PathsBody,
    QueuedOut,
    WriteBody,
)

router = APIRouter(prefix="/api/clients/{endpoint}", tags=["device management"])
ServerDep = Annotated[LwM2MServer, Depends(get_server)]
EndpointName = Annotated[str, PathParam(description="the client's endpoint name",
                                        examples=["dev-1"])]
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": QueuedOut, "description": "the client sleeps; the request is queued and "
          "sent when it wakes, at least once: if the server restarts while sending it, it is "
          "sent again (unless queued with at_most_once=true)"},
    400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 502: {"model": ErrorOut},
    504: {"model": ErrorOut}}
#: The longest ``timeout`` a request may ask for, in seconds.
MAX_TIMEOUT = 600
#: Only for a request that gets queued (the client sleeps); see aiolwm2m.server.queue_mode.
AtMostOnce = Annotated[bool, Query(
    description="if the request is queued, never send it twice: it is marked in-flight "
                "(durably) before it is sent, and one the server finds in-flight after a "
                "restart is failed with outcome \"unknown\" instead of being sent again")]


def _format(value: str | int | None) -> int | None:
    try:
        return parse_format(value)
    except ValueError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None


def queued_out(q: QueuedRequest) -> QueuedOut:
    return QueuedOut.model_validate(queued_request(q))


async def run(server: LwM2MServer, endpoint: str, op: Operation, timeout: float | None,
              at_most_once: bool = False) -> Response:
    """Send ``op`` and answer with the client's response, or 202 and the queued request
    when the client sleeps."""
    with device_errors():
        outcome = await server.submit(endpoint, op, timeout=timeout,
                                      at_most_once=at_most_once)
    if isinstance(outcome, QueuedRequest):
        return json_response(queued_request(outcome), status.HTTP_202_ACCEPTED)
    return json_response(operation_result(server, endpoint, op, outcome))


def _model(server: LwM2MServer, endpoint: str) -> Any:
    with device_errors():
        return server.context(endpoint).model


Result = OperationResult | QueuedOut


def read_request(path: str, format: str | None) -> ReadRequest:
    """The Read of ``GET .../read`` (shared with :mod:`.fast_lane`)."""
    return ReadRequest(parse_path(path), _format(format))


@router.get("/read", response_model=Result, responses=RESPONSES, summary="Read")
async def read(server: ServerDep, endpoint: EndpointName,
               path: Annotated[str, Query(examples=["/3/0"])],
               format: Annotated[str | None, Query()] = None,
               timeout: Annotated[float | None, Query(gt=0, le=MAX_TIMEOUT)] = None
               ) -> Response:
    return await run(server, endpoint, read_request(path, format), timeout)


@router.get("/discover", response_model=Result, responses=RESPONSES, summary="Discover")
async def discover(server: ServerDep, endpoint: EndpointName,
                   path: Annotated[str, Query(examples=["/3"])],
                   timeout: Annotated[float | None, Query(gt=0, le=600)] = None) -> Response:
    return await run(server, endpoint, DiscoverRequest(parse_path(path)), timeout)


@router.post("/write", response_model=Result, responses=RESPONSES,
             summary="Write (replace) or partial update")
async def write(server: ServerDep, endpoint: EndpointName, body: WriteBody,
                at_most_once: AtMostOnce = False) -> Response:
    path = parse_path(body.path)
    if path == ROOT:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "cannot write the root")
    model = _model(server, endpoint)
    with device_errors():
        node = build_node(model, path, opaque_from_json(model, path, body.value))
    op = WriteRequest(path, node, body.mode == "replace", _format(body.format))
    return await run(server, endpoint, op, body.timeout, at_most_once)


@router.post("/execute", response_model=Result, responses=RESPONSES, summary="Execute")
async def execute(server: ServerDep, endpoint: EndpointName, body: ExecuteBody,
                  at_most_once: AtMostOnce = False) -> Response:
    path = parse_path(body.path)
    if not path.is_resource:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Execute targets a resource path")
    return await run(server, endpoint, ExecuteRequest(path, body.arguments), body.timeout,
                     at_most_once)


@router.post("/create", response_model=Result, responses=RESPONSES,
             summary="Create an object instance")
async def create(server: ServerDep, endpoint: EndpointName, body: CreateBody,
                 at_most_once: AtMostOnce = False) -> Response:
    path = parse_path(body.path)
    if not path.is_object:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Create targets an object path")
    model = _model(server, endpoint)
    with device_errors():
        target = path.child(body.instance_id or 0)
        node = build_node(model, target, opaque_from_json(model, target, body.values))
    # Without instance_id the client picks the id (LwM2M 1.1); "location" tells which.
    op = CreateRequest(path, node, _format(body.format), assign_id=body.instance_id is None)
    return await run(server, endpoint, op, body.timeout, at_most_once)


@router.post("/delete", response_model=Result, responses=RESPONSES,
             summary="Delete an object instance")
async def delete(server: ServerDep, endpoint: EndpointName, body: PathBody,
                 at_most_once: AtMostOnce = False) -> Response:
    path = parse_path(body.path)
    if not path.is_object_instance:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Delete targets an object instance")
    return await run(server, endpoint, DeleteRequest(path), body.timeout,
                     at_most_once)


@router.post("/write-attributes", response_model=Result, responses=RESPONSES,
             summary="Write notification attributes")
async def write_attributes(server: ServerDep, endpoint: EndpointName, body: AttributesBody
                           ) -> Response:
    path = parse_path(body.path)
    items = [f"{k}={int(v) if float(v).is_integer() else v}" for k, v in body.set.items()]
    items.extend(body.unset)
    if not items:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no attribute to set or unset")
    try:
        update = parse_write_attributes(items)
    except LwM2MError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from None
    return await run(server, endpoint, WriteAttributesRequest(path, update), body.timeout)


@router.post("/read-composite", response_model=Result, responses=RESPONSES,
             summary="Read-Composite")
async def read_composite(server: ServerDep, endpoint: EndpointName, body: PathsBody) -> Response:
    op = ReadCompositeRequest(tuple(parse_path(p) for p in body.paths), _format(body.format))
    return await run(server, endpoint, op, body.timeout)


@router.post("/write-composite", response_model=Result, responses=RESPONSES,
             summary="Write-Composite")
async def write_composite(server: ServerDep, endpoint: EndpointName, body: CompositeWriteBody,
                          at_most_once: AtMostOnce = False) -> Response:
    model = _model(server, endpoint)
    with device_errors():
        nodes = {path: build_node(model, path, opaque_from_json(model, path, v))
                 for path, v in ((parse_path(p), v) for p, v in body.values.items())}
    op = WriteCompositeRequest.of(nodes, _format(body.format))
    return await run(server, endpoint, op, body.timeout, at_most_once)


@router.post("/observe", response_model=Result, responses=RESPONSES, summary="Observe")
async def observe(server: ServerDep, endpoint: EndpointName, body: PathBody
                  ) -> Response:
    op = ObserveRequest(parse_path(body.path), _format(body.format))
    return await run(server, endpoint, op, body.timeout)


@router.post("/observe-composite", response_model=Result, responses=RESPONSES,
             summary="Observe-Composite")
async def observe_composite(server: ServerDep, endpoint: EndpointName, body: PathsBody) -> Response:
    op = ObserveCompositeRequest(tuple(parse_path(p) for p in body.paths),
                                 _format(body.format))
    return await run(server, endpoint, op, body.timeout)


@router.post("/cancel-observation",
             responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}},
             summary="Cancel an observation (actively by default)")
async def cancel_observation(server: ServerDep, endpoint: EndpointName, body: CancelBody
                             ) -> dict[str, bool]:
    if (body.path is None) == (body.paths is None):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "give either path or paths")
    target: Any = body.path if body.path is not None else body.paths
    if body.path is not None:
        parse_path(body.path)
    else:
        for p in body.paths or ():
            parse_path(p)
    with device_errors():
        cancelled = await server.cancel_observation(endpoint, target, active=body.active)
    if not cancelled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such observation")
    return {"cancelled": True}


@router.get("/observations", response_model=list[ObservationOut],
            responses={404: {"model": ErrorOut}}, summary="The server's observations")
async def observations(server: ServerDep, endpoint: EndpointName) -> list[ObservationOut]:
    with device_errors():
        reg = server.registration(endpoint)
    return [ObservationOut(token=o.token.hex(), paths=list(o.paths), composite=o.composite,
                           format=format_name(o.content_format),
                           negotiated_format=format_name(o.negotiated_format),
                           created_at=o.created_at)
            for o in server.observations.for_registration(reg.id)]
