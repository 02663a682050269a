"""``/api/server``: the server's version, CoAP address and clock.

The web UI uses it to tell a new user where to point a device (its empty device list shows
the CoAP URI) and to show relative times in the server's clock.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from aiolwm2m import __version__
from aiolwm2m.server import LwM2MServer

from .deps import get_server

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
async def server_info(server: Annotated[LwM2MServer, Depends(get_server)]) -> ServerInfoOut:
    return ServerInfoOut(version=__version__, coap_host=server.config.host,
                         coap_port=server.port,
                         lwm2m_versions=sorted(server.config.lwm2m_versions),
                         registrations=len(server.registrations), time=server.config.clock())
