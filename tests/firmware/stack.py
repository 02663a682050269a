"""A live server with the firmware service and its REST API on real sockets."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

TOKEN = "firmware-test-token-0123"


@dataclass
class FirmwareStack:
    server: LwM2MServer
    firmware: FirmwareService
    web: WebServer
    http: httpx.AsyncClient

    @property
    def coap_uri(self) -> str:
        return f"coap://[::1]:{self.server.port}"


@contextlib.asynccontextmanager
async def firmware_stack(data_dir: Path, *, web_tls: ssl.SSLContext | None = None,
                         web_trust: ssl.SSLContext | None = None, **config: Any
                         ) -> AsyncIterator[FirmwareStack]:
    """``web_tls``: the HTTP port serves HTTPS with it (``web_trust`` verifies it here)."""
    config.setdefault("store", "memory")
    config.setdefault("host", "::1")
    config.setdefault("port", 0)
    server = LwM2MServer(ServerConfig(data_dir=data_dir, **config))
    await server.start()
    firmware = FirmwareService(server)
    await firmware.start()
    web = WebServer(create_app(server, [TOKEN], firmware=firmware), "127.0.0.1", 0,
                    tls=web_tls)
    await web.start()
    firmware.deliveries.http_port = web.port
    firmware.deliveries.http_host = "127.0.0.1"
    firmware.deliveries.http_scheme = web.scheme
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30, verify=web_trust or True)
    try:
        yield FirmwareStack(server, firmware, web, http)
    finally:
        await http.aclose()
        await web.stop()
        await firmware.stop()
        await server.stop()
