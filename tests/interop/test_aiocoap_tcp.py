"""aiocoap (an independent Python CoAP stack) over coap+tcp, in both roles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiocoap
import aiocoap.resource as aioresource
import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint

from .conftest import free_port, interop_site

pytestmark = pytest.mark.interop
LARGE = bytes((i * 13) & 0xFF for i in range(100_000))


@pytest.fixture
async def server() -> AsyncIterator[tuple[TcpEndpoint, Site]]:
    site = interop_site(LARGE)
    ep = await TcpEndpoint.create("::", 0, site=site)
    yield ep, site
    await ep.close()


async def test_aiocoap_client(server: tuple[TcpEndpoint, Site], ctx: aiocoap.Context) -> None:
    ep, site = server
    base = f"coap+tcp://127.0.0.1:{ep.port}"
    resp = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{base}/large")).response
    assert resp.code == aiocoap.CONTENT and resp.payload == LARGE
    body = b"z" * 50_000
    resp = await ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=f"{base}/store",
                                             payload=body)).response
    assert resp.code == aiocoap.CHANGED
    store = site.find(Message.request(Code.GET, "/store"))
    assert isinstance(store, StoreResource) and store.data == body
    resp = await ctx.request(aiocoap.Message(code=aiocoap.GET, uri=f"{base}/nothing")).response
    assert resp.code == aiocoap.NOT_FOUND
    # IPv6 reaches the same dual-stack listener.
    resp = await ctx.request(aiocoap.Message(
        code=aiocoap.GET, uri=f"coap+tcp://[::1]:{ep.port}/store")).response
    assert resp.payload == body


async def test_aiocoap_observe(server: tuple[TcpEndpoint, Site]) -> None:
    ep, site = server
    ctx = await aiocoap.Context.create_client_context()
    counter = site.find(Message.request(Code.GET, "/counter"))
    assert isinstance(counter, CounterResource)
    req = ctx.request(aiocoap.Message(code=aiocoap.GET, observe=0,
                                      uri=f"coap+tcp://127.0.0.1:{ep.port}/counter"))
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
    await ctx.shutdown()
    await asyncio.sleep(0.1)
    # The observation ended with the connection.
    assert len(ep.dispatcher.observers) == 0


class _Text(aioresource.Resource):  # type: ignore[misc]
    def __init__(self, payload: bytes) -> None:
        super().__init__()
        self.payload = payload

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.payload)


@pytest.mark.filterwarnings("ignore:Initializing messages with a token:DeprecationWarning")
async def test_our_client_against_aiocoap_server() -> None:
    root = aioresource.Site()
    root.add_resource(["hello"], _Text(b"hello from aiocoap"))
    root.add_resource(["large"], _Text(LARGE))
    port = free_port()
    srv = await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", port),
                                                      transports=["tcpserver"])
    client = await TcpEndpoint.create(listen=False)
    try:
        r = await client.request(Message.request(Code.GET, "/hello"), ("127.0.0.1", port))
        assert r.code == Code.CONTENT and r.payload == b"hello from aiocoap"
        r = await client.request(Message.request(Code.GET, "/large"), ("127.0.0.1", port))
        assert r.payload == LARGE
        assert await client.ping(("127.0.0.1", port), timeout=3) < 1
    finally:
        await client.close()
        await srv.shutdown()
