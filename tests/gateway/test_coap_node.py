"""A plain CoAP node (aiocoap, an independent stack, no LwM2M) behind our gateway: the
server reads and observes its values, and its Writes and Executes reach the node."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiocoap
import aiocoap.resource
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.gateway import CoapNodeDevice
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import NotificationReceived

from .conftest import GatewayFactory, eventually, next_event


class Temperature(aiocoap.resource.ObservableResource):
    def __init__(self) -> None:
        super().__init__()
        self.value = "21.5"

    def set(self, value: str) -> None:
        self.value = value
        self.updated_state()

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.value.encode(), content_format=0)


class Label(aiocoap.resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.value = "boiler room"
        self.puts: list[str] = []

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=self.value.encode(), content_format=0)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        text = request.payload.decode()
        self.puts.append(text)
        if text == "forbidden":
            return aiocoap.Message(code=C.FORBIDDEN)
        self.value = text
        return aiocoap.Message(code=C.CHANGED)


class Reset(aiocoap.resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[bytes] = []

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.posts.append(request.payload)
        return aiocoap.Message(code=C.CHANGED)


class Node:
    def __init__(self) -> None:
        self.temperature = Temperature()
        self.label = Label()
        self.reset = Reset()
        self.site = aiocoap.resource.Site()
        self.site.add_resource(["temperature"], self.temperature)
        self.site.add_resource(["label"], self.label)
        self.site.add_resource(["reset"], self.reset)
        self.context: aiocoap.Context | None = None
        self.port = 0

    async def start(self) -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
            self.port = probe.getsockname()[1]
        self.context = await aiocoap.Context.create_server_context(
            self.site, bind=("::1", self.port), transports=["udp6"])

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    n = Node()
    await n.start()
    yield n
    await n.stop()


def boiler(port: int) -> CoapNodeDevice:
    return CoapNodeDevice("boiler", ("::1", port), {
        "/3303/0/5700": "/temperature", "/3303/0/5750": "/label", "/3303/0/5605": "/reset"},
        device_id="urn:dev:boiler", timeout=2.0)


async def test_a_coap_node_behind_the_gateway(server: LwM2MServer, node: Node,
                                              make_gateway: GatewayFactory) -> None:
    await make_gateway(server.port, end_devices=[boiler(node.port)])
    await eventually(lambda: len(server.end_devices) == 1)
    # Reads come from the node's last values (observed since the gateway started).
    assert (await server.read("gw-1", "/boiler/3303/0/5700")).content.value == 21.5
    assert (await server.read("gw-1", "/boiler/3303/0/5750")).content.value == "boiler room"
    # The node's notifications reach the server's observation through the gateway.
    events = server.events.stream()
    assert (await server.observe("gw-1", "/boiler/3303/0/5700")).code == Code.CONTENT
    node.temperature.set("23.25")
    note = await next_event(events, NotificationReceived)
    assert note.response.content.value == 23.25
    # A Write is a PUT to the node, answered once the node took it.
    assert (await server.write("gw-1", "/boiler/3303/0/5750", "cellar")).code == Code.CHANGED
    assert node.label.value == "cellar"
    # A refused one fails with the node's code, and the gateway keeps the node's value.
    refused = await server.write("gw-1", "/boiler/3303/0/5750", "forbidden")
    assert refused.code == Code.FORBIDDEN
    assert (await server.read("gw-1", "/boiler/3303/0/5750")).content.value == "cellar"
    # An Execute is a POST.
    assert (await server.execute("gw-1", "/boiler/3303/0/5605", "now")).code == Code.CHANGED
    assert node.reset.posts == [b"now"]
    # The node goes away: Reads still answer its last value, a Write is 5.03.
    await node.stop()
    assert (await server.read("gw-1", "/boiler/3303/0/5700")).content.value == 23.25
    gone = await server.write("gw-1", "/boiler/3303/0/5750", "attic", timeout=15)
    assert gone.code == Code.SERVICE_UNAVAILABLE
    await asyncio.sleep(0)


async def test_a_silent_node_does_not_hold_back_the_others(server: LwM2MServer, node: Node,
                                                            make_gateway: GatewayFactory
                                                            ) -> None:
    """End devices start together: a node that never answers (a socket that reads and
    says nothing) delays neither the gateway nor the live node behind it."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as silent:
        silent.bind(("::1", 0))
        mute = CoapNodeDevice("mute", ("::1", silent.getsockname()[1]),
                              {"/3303/0/5700": "/temperature"}, timeout=8.0)
        live = boiler(node.port)
        starting = asyncio.create_task(make_gateway(server.port, end_devices=[mute, live]))
        try:
            # Well before the silent node's 8 s timeout, the live one has its value.
            await eventually(lambda: live.tree.get(3303, 0) is not None and
                             live.tree.get(3303, 0).get(5700) == 21.5, 6.0)  # type: ignore[union-attr]
            assert mute.tree.get(3303, 0).get(5700) is None  # type: ignore[union-attr]
        finally:
            await starting
    assert (await server.read("gw-1", "/boiler/3303/0/5700")).content.value == 21.5
