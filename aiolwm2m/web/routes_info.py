"""``/api/server``: the server's version, CoAP address and clock; ``/api/health``.

The web UI uses ``/api/server`` to tell a new user where to point a device (its empty device
list shows the CoAP URI) and to show relative times in the server's clock. ``/api/health``
says whether registrations can be stored (HTTP 503 while the SQLite writer restarts).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from aiolwm2m.server import LwM2MServer

from . import result_json
from .deps import get_server
from .result_json import json_response

router = APIRouter(prefix="/api", tags=["server"])


class ServerInfoOut(BaseModel):
    version: str
    coap_host: str
    coap_port: int
    lwm2m_versions: list[str]
    registrations: int
    time: float


@router.get("/server", response_model=ServerInfoOut,
            summary="Server version, CoAP address, registration count and clock")
async def server_info(server: Annotated[LwM2MServer, Depends(get_server)]) -> Response:
    return json_response(result_json.server_info(server))


class HealthOut(BaseModel):
    #: "ok", or "degraded" while the store cannot take writes (answered with HTTP 503).
    status: str
    #: The SQLite writer process: "ok", "restarting" (it died and is being restarted),
    #: "closed"; None for the memory store.
    writer: str | None
    #: How many times the writer process was restarted since the server started.
    writer_restarts: int
    #: Why the writer last died (or failed to restart), if it ever did.
    writer_last_error: str | None
    registrations: int


@router.get("/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "the store cannot take writes "
                                                                "(its writer is restarting)"}},
            summary="Whether the server can take registrations: the store writer's state")
async def health(server: Annotated[LwM2MServer, Depends(get_server)], response: Response
                 ) -> HealthOut:
    writer = server.store_writer
    state = writer.state if writer is not None else None
    ok = state in (None, "ok")
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(status="ok" if ok else "degraded", writer=state,
                     writer_restarts=writer.restarts if writer is not None else 0,
                     writer_last_error=writer.last_error if writer is not None else None,
                     registrations=len(server.registrations))
