"""The aiocoap client (an independent Python CoAP stack) against our server, and our client
against an aiocoap server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiocoap
import aiocoap.resource as aioresource
import pytest

from aiolwm2m.cli.coap_server import CounterResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import free_port, interop_site

pytestmark = pytest.mark.interop
LARGE = bytes((i * 13) & 0xFF for i in range(6000))


@pytest.fixture
async def server() -> AsyncIterator[tuple[UdpEndpoint, Site]]:
    site = interop_site(LARGE)
    ep = await UdpEndpoint.create("::", 0, site=site)
    yield ep, site
    await ep.close()


async def test_aiocoap_get_put_block(server: tuple[UdpEndpoint, Site],
                                     ctx: aiocoap.Context) -> None:
    ep, _site = server
    base = f"coap://[::1]:{ep.port}"
    resp = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{base}/large")).response
    assert resp.code == aiocoap.CONTENT and resp.payload == LARGE
    body = b"z" * 5000
    resp = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{base}/store",
                                             payload=body)).response
    assert resp.code == aiocoap.CHANGED
    resp = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{base}/store")).response
    assert resp.payload == body
    resp = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{base}/nothing")).response
    assert resp.code == aiocoap.NOT_FOUND


async def test_aiocoap_observe(server: tuple[UdpEndpoint, Site], ctx: aiocoap.Context) -> None:
    ep, site = server
    counter = site.find(Message.request(Code.GET, "/counter"))
    assert isinstance(counter, CounterResource)
    req = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"coap://[::1]:{ep.port}/counter",
                                      observe=0))
    first = await req.response
    assert first.payload == b"0"
    values = []

    async def produce() -> None:
        for i in range(1, 4):
            await asyncio.sleep(0.1)
            counter.value = i
            counter.notify()

    task = asyncio.create_task(produce())
    async for note in req.observation:
        values.append(int(note.payload))
        if len(values) == 3:
            req.observation.cancel()
            break
    await task
    assert values == [1, 2, 3]


class AiocoapEcho(aioresource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytes(range(256)) * 10

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.data)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        self.data = request.payload
        return aiocoap.Message(code=aiocoap.CHANGED)


async def test_our_client_against_aiocoap_server() -> None:
    root = aioresource.Site()
    root.add_resource(["echo"], AiocoapEcho())
    port = free_port()
    srv = await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", port),
                                                      transports=["udp6"])
    try:
        async with await UdpEndpoint.create("127.0.0.1", 0) as ep:
            resp = await ep.request(Message.request(Code.GET, "/echo"), ("127.0.0.1", port))
            assert resp.payload == bytes(range(256)) * 10
            body = b"q" * 3000
            resp = await ep.request(Message.request(Code.PUT, "/echo", payload=body),
                                    ("127.0.0.1", port))
            assert resp.code == Code.CHANGED
            resp = await ep.request(Message.request(Code.GET, "/echo"), ("127.0.0.1", port))
            assert resp.payload == body
    finally:
        await srv.shutdown()
