"""An LwM2M server with NIDD on, its HTTP front end (where the SCEF's callbacks land) and a
SCEF emulator, all on real sockets; every T8 request the server sends and every answer it
gets is checked against the 3GPP schema."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.emulator import ScefEmulator, UeBehaviour
from aiolwm2m.nidd.service import NiddService
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .fixtures import KINDS, BareUe
from .t8_schema import T8Schema

TOKEN = "nidd-test-token"


@dataclass
class Rig:
    server: LwM2MServer
    web: WebServer
    scef: ScefEmulator
    api: httpx.AsyncClient
    checked: list[str]

    @property
    def nidd(self) -> NiddService:
        service: NiddService = self.server.nidd
        return service

    async def configured(self, target: str, timeout: float = 10.0) -> str:
        """Wait until the server's configuration for ``target`` is active; its URI."""
        async with asyncio.timeout(timeout):
            while True:
                for entry in self.nidd.configurations.entries.values():
                    if entry.target == target and entry.url is not None:
                        return entry.url
                await asyncio.sleep(0.02)


def check_server_traffic(schema: T8Schema, service: NiddService, checked: list[str]) -> None:
    """Hook the server's T8 client and the emulator's notifier into the schema checks."""

    async def on_request(request: httpx.Request) -> None:
        body = json.loads(request.content) if request.content else None
        schema.check_request(request.method, str(request.url), body)
        checked.append(f"{request.method} request")

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        schema.check_response(response.request.method, response)
        checked.append(f"{response.request.method} {response.status_code}")

    service.client.http.event_hooks["request"].append(on_request)
    service.client.http.event_hooks["response"].append(on_response)


def check_notifications(schema: T8Schema, scef: ScefEmulator, checked: list[str]) -> None:
    from aiolwm2m.nidd import t8_model as m

    def observe(url: str, body: dict[str, Any], response: httpx.Response | None) -> None:
        note = m.parse_notification(body)
        schema.check_callback(body, KINDS[type(note)])
        checked.append(f"callback {type(note).__name__}")

    assert scef.notifier is not None
    scef.notifier.observers.append(observe)


@asynccontextmanager
async def nidd_rig(schema: T8Schema, *, behaviour: UeBehaviour | None = None,
                   settings: NiddSettings | None = None, store: str = "memory",
                   scef_url: str | None = None, scef: ScefEmulator | None = None,
                   **config: Any) -> AsyncIterator[Rig]:
    """``scef``: share that emulator (several servers on one SCEF) instead of a new one."""
    async with contextlib.AsyncExitStack() as stack:
        if scef is None:
            scef = await stack.enter_async_context(
                ScefEmulator("127.0.0.1", 0, behaviour=behaviour))
        server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store=store,
                                          scef_url=scef_url or scef.url, **config))
        web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
        await web.start()
        base = settings or NiddSettings()
        server.config.nidd = dataclasses.replace(base, callback_url=web.url)
        checked: list[str] = []
        check_notifications(schema, scef, checked)
        await server.start()
        check_server_traffic(schema, server.nidd, checked)
        api = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=20)
        try:
            yield Rig(server, web, scef, api, checked)
        finally:
            await api.aclose()
            await server.stop()
            await web.stop()


class HandDevice:
    """A device whose CoAP is written by hand, on a bare UE: for what the client library
    would never send."""

    def __init__(self, ue: BareUe) -> None:
        self.ue = ue
        self.mid = 100

    def send(self, msg: Message) -> Message:
        self.mid += 1
        msg.mid = self.mid
        self.ue.send(ue_link.mo_data(self.ue.ident, encode_udp(msg)))
        return msg

    async def receive(self, timeout: float = 10.0) -> Message:
        frame = await self.ue.next(ue_link.MT_DATA, timeout)
        return decode_udp(frame.data)

    async def register(self, endpoint: str, lifetime: int = 300) -> Message:
        msg = Message.request(Code.POST, ["rd"],
                              query=[f"ep={endpoint}", f"lt={lifetime}", "lwm2m=1.1", "b=N"],
                              payload=b"</1/0>,</3/0>", content_format=40,
                              token=b"\x01\x02")
        self.send(msg)
        return await self.receive()

    async def answer(self, request: Message, code: int, payload: bytes = b"",
                     content_format: int | None = None) -> None:
        response = request.response(code, payload, content_format)
        response.mtype = MessageType.ACK if request.mtype == MessageType.CON else (
            MessageType.NON)
        if response.mtype == MessageType.ACK:
            response.mid = request.mid
            self.ue.send(ue_link.mo_data(self.ue.ident, encode_udp(response)))
        else:
            self.send(response)
