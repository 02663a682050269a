"""Real parts for the NIDD tests: the SCEF emulator, a T8 HTTP client whose every request and
response is checked against the 3GPP schema, a callback receiver whose every notification is
checked too, and a bare UE on the emulator's UE socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.emulator import ScefEmulator, UeBehaviour
from aiolwm2m.web.serve import WebServer

from .t8_schema import T8Schema

KINDS = {m.NiddUplinkDataNotification: "NiddUplinkDataNotification",
         m.NiddDownlinkDataDeliveryStatusNotification:
             "NiddDownlinkDataDeliveryStatusNotification",
         m.NiddConfigurationStatusNotification: "NiddConfigurationStatusNotification",
         m.GmdNiddDownlinkDataDeliveryNotification: "GmdNiddDownlinkDataDeliveryNotification",
         m.ManagePortNotification: "ManagePortNotification"}


def checking_client(schema: T8Schema, base_url: str, *, check_requests: bool = True,
                    **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that checks each T8 request body (unless the test sends bad ones on
    purpose) and each response."""

    async def on_request(request: httpx.Request) -> None:
        if not check_requests or "/3gpp-nidd/" not in request.url.path:
            return
        body = json.loads(request.content) if request.content else None
        schema.check_request(request.method, str(request.url), body)

    async def on_response(response: httpx.Response) -> None:
        if "/3gpp-nidd/" not in response.request.url.path:
            return
        await response.aread()
        schema.check_response(response.request.method, response)

    return httpx.AsyncClient(base_url=base_url, timeout=20,
                             event_hooks={"request": [on_request], "response": [on_response]},
                             **kwargs)


class CallbackSink:
    """An SCS/AS callback endpoint that records (and checks) every notification."""

    def __init__(self, schema: T8Schema, status: int = 204) -> None:
        self.schema = schema
        self.status = status
        self.received: list[m.Notification] = []
        self.arrived = asyncio.Event()
        app = Starlette(routes=[Route("/cb", self.receive, methods=["POST"])])
        self.web = WebServer(app, "127.0.0.1", 0)  # type: ignore[arg-type]

    async def receive(self, request: Request) -> Response:
        body = json.loads(await request.body())
        note = m.parse_notification(body)
        self.schema.check_callback(body, KINDS[type(note)])
        self.received.append(note)
        self.arrived.set()
        return Response(status_code=self.status)

    @property
    def url(self) -> str:
        return f"{self.web.url}/cb"

    async def wait_for(self, kind: type[Any], count: int = 1, timeout: float = 10.0
                       ) -> list[Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = [n for n in self.received if isinstance(n, kind)]
                if len(found) >= count:
                    return found
                self.arrived.clear()
                await self.arrived.wait()


class BareUe(asyncio.DatagramProtocol):
    """A UE that speaks the UE link directly (the client library's own endpoint is tested
    elsewhere)."""

    def __init__(self, ident: str, address: tuple[str, int]) -> None:
        self.ident = ident
        self.address = address
        self.frames: asyncio.Queue[ue_link.Frame] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.frames.put_nowait(ue_link.decode(data))

    async def open(self) -> BareUe:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, datagram: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(datagram, self.address)

    async def attach(self, groups: tuple[str, ...] = ()) -> ue_link.Frame:
        self.send(ue_link.attach(self.ident, groups))
        return await self.next(ue_link.ATTACHED)

    def detach(self) -> None:
        self.send(ue_link.encode(ue_link.Frame(ue_link.DETACH, self.ident)))

    async def next(self, kind: int, timeout: float = 10.0) -> ue_link.Frame:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if frame.kind == kind:
                    return frame

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@asynccontextmanager
async def emulator(behaviour: UeBehaviour | None = None, **kwargs: Any
                   ) -> AsyncIterator[ScefEmulator]:
    scef = ScefEmulator("127.0.0.1", 0, behaviour=behaviour, **kwargs)
    await scef.start()
    try:
        yield scef
    finally:
        await scef.stop()


@asynccontextmanager
async def callback_sink(schema: T8Schema, status: int = 204) -> AsyncIterator[CallbackSink]:
    sink = CallbackSink(schema, status)
    await sink.web.start()
    try:
        yield sink
    finally:
        await sink.web.stop()


@asynccontextmanager
async def bare_ue(ident: str, scef: ScefEmulator) -> AsyncIterator[BareUe]:
    ue = await BareUe(ident, scef.ue_address).open()
    try:
        yield ue
    finally:
        ue.close()
