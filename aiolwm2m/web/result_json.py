"""The JSON bodies of device operations and server information, built once as plain data.

The routes and :mod:`.fast_lane` both answer with these bytes. They are built from the
server's objects straight into dicts and encoded by pydantic-core's serializer: going
through the pydantic response models (dicts, then validated model instances, then JSON)
cost a read of ``/3/0`` more than the rest of its REST path. The models in
:mod:`.schemas` still describe these bodies in the OpenAPI schema, and the schemathesis
test checks that what is sent conforms to them.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

from aiolwm2m import __version__
from aiolwm2m.lwm2m.operations import (
    CompositeResponse,
    CreateResponse,
    DiscoverResponse,
    ObserveResponse,
    Operation,
    ReadResponse,
)
from aiolwm2m.lwm2m.operations import (
    Response as LwM2MResponse,
)
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import QueuedRequest

from .formats import format_name, leaf_values, node_json

JSON_MEDIA_TYPE = "application/json"


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities (a device may report them) become null, as
    FastAPI renders them."""
    return to_json(data, inf_nan_mode="null")


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(encode_json(data), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def operation_result(server: LwM2MServer, endpoint: str, op: Operation, resp: LwM2MResponse
                     ) -> dict[str, Any]:
    """What the client answered, as :class:`~.schemas.OperationResult` describes it."""
    reg = server.registrations.get(endpoint)
    # (A device may deregister between its answer and this: the server's own model then.)
    model = server.registry.context(reg).model if reg is not None else server.model
    content: Any = None
    values: list[dict[str, Any]] = []
    if isinstance(resp, ObserveResponse) and resp.composite is not None:
        values = [v for p, n in sorted(resp.composite.items()) for v in leaf_values(p, n, model)]
        content = {str(p): node_json(p, n, model)["content"] for p, n in resp.composite.items()}
    elif isinstance(resp, ReadResponse):
        out = node_json(resp.path, resp.content, model)
        content, values = out["content"], out["values"]
    elif isinstance(resp, CompositeResponse):
        values = [v for p, n in sorted(resp.content.items()) for v in leaf_values(p, n, model)]
        content = {str(p): node_json(p, n, model)["content"] for p, n in resp.content.items()}
    links = None
    if isinstance(resp, DiscoverResponse):
        links = [{"path": str(link.path), "dim": link.dim, "version": link.version,
                  "attributes": dict(link.attributes.items())} for link in resp.links]
    return {
        "endpoint": endpoint, "operation": op.kind, "code": resp.code_text,
        "success": resp.success, "diagnostic": resp.diagnostic or None,
        "format": format_name(resp.format), "content": content, "values": values,
        "links": links,
        "location": str(resp.location) if isinstance(resp, CreateResponse) and resp.location
        else None,
        "token": resp.token.hex() if isinstance(resp, ObserveResponse) and resp.token
        else None}


def queued_request(q: QueuedRequest) -> dict[str, Any]:
    """A queued request, as :class:`~.schemas.QueuedOut` describes it."""
    return {"request_id": q.id, "endpoint": q.endpoint, "operation": q.operation,
            "state": q.state, "created_at": q.created_at, "expires_at": q.expires_at,
            "finished_at": q.finished_at, "result": q.result, "at_most_once": q.at_most_once}


def server_info(server: LwM2MServer) -> dict[str, Any]:
    """``GET /api/server``, as :class:`~.routes_info.ServerInfoOut` describes it."""
    return {"version": __version__, "coap_host": server.config.host, "coap_port": server.port,
            "lwm2m_versions": sorted(server.config.lwm2m_versions),
            "registrations": len(server.registrations), "time": server.config.clock()}
