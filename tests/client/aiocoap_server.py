"""An LwM2M server played by aiocoap, an independent CoAP stack, for client tests.

It accepts the client's Register on /rd and then lets a test send hand-built requests to
the client and look at the raw responses (code, Content-Format, payload bytes). No
aiolwm2m code runs on this side.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap.numbers.codes import Code as C


class RegistrationResource(aiocoap.resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.registrations: list[aiocoap.Message] = []
        self.updates: list[aiocoap.Message] = []
        self.sends: list[aiocoap.Message] = []
        self.registered = asyncio.Event()

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.registrations.append(request)
        self.registered.set()
        return aiocoap.Message(code=C.CREATED, location_path=("rd", "r1"))

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=C.DELETED)


class UpdateResource(aiocoap.resource.Resource):
    def __init__(self, rd: RegistrationResource) -> None:
        super().__init__()
        self.rd = rd

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.rd.updates.append(request)
        return aiocoap.Message(code=C.CHANGED)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=C.DELETED)


class SendResource(aiocoap.resource.Resource):
    def __init__(self, rd: RegistrationResource) -> None:
        super().__init__()
        self.rd = rd

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.rd.sends.append(request)
        return aiocoap.Message(code=C.CHANGED)


class AiocoapLwM2MServer:
    def __init__(self) -> None:
        self.rd = RegistrationResource()
        self.site = aiocoap.resource.Site()
        self.site.add_resource(["rd"], self.rd)
        self.site.add_resource(["rd", "r1"], UpdateResource(self.rd))
        self.site.add_resource(["dp"], SendResource(self.rd))
        self.context: aiocoap.Context | None = None
        self.port = 0

    async def start(self) -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
            self.port = probe.getsockname()[1]
        self.context = await aiocoap.Context.create_server_context(self.site,
                                                                   bind=("::1", self.port),
                                                                   transports=["udp6"])

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()

    @property
    def client_address(self) -> str:
        remote = self.rd.registrations[-1].remote
        host, port = remote.sockaddr[0], remote.sockaddr[1]
        return f"[{host}]:{port}"

    def message(self, code: Any, path: str, *, query: Sequence[str] = (),
                payload: bytes = b"", content_format: int | None = None,
                accept: int | None = None, observe: int | None = None) -> aiocoap.Message:
        uri = f"coap://{self.client_address}{path}"
        if query:
            uri += "?" + "&".join(query)
        msg = aiocoap.Message(code=code, uri=uri, payload=payload)
        if content_format is not None:
            msg.opt.content_format = content_format
        if accept is not None:
            msg.opt.accept = accept
        if observe is not None:
            msg.opt.observe = observe
        return msg

    async def request(self, code: Any, path: str, **kwargs: Any) -> aiocoap.Message:
        assert self.context is not None
        response: aiocoap.Message = await asyncio.wait_for(
            self.context.request(self.message(code, path, **kwargs)).response, 5)
        return response
