"""A live server with its REST API on real sockets, and an aiocoap device registered to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..server.aiocoap_device import AiocoapDevice, started_device

TOKEN = "test-token-0123456789"


@dataclass
class Stack:
    server: LwM2MServer
    web: WebServer
    device: AiocoapDevice
    http: httpx.AsyncClient

    @property
    def coap_uri(self) -> str:
        return f"coap://[::1]:{self.server.port}"


async def stack(awake_time: float = 93.0) -> AsyncIterator[Stack]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory",
                                      awake_time=awake_time))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    device = await started_device("dev-1")
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=20)
    try:
        yield Stack(server, web, device, http)
    finally:
        await http.aclose()
        await device.stop()
        await web.stop()
        await server.stop()
