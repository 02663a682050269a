"""The gateway as broker (CoP-002): nodes (aiocoap clients, an independent stack) publish
to the gateway's broker; the LwM2M server reads and observes their last values through
the gateway without reaching the nodes, and sees what the broker knows of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiocoap
import cbor2
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.gateway import BrokerNodes, LwM2MGateway
from aiolwm2m.gateway.events import EndDeviceAdded
from aiolwm2m.gateway.node_model import NODE_STATE_OBJECT
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.pubsub import Broker, BrokerConfig
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import NotificationReceived

from .conftest import GatewayFactory, eventually, next_event


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(BrokerConfig(hosts=("127.0.0.1",), port=0, store="memory"))
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
async def coap() -> AsyncIterator[aiocoap.Context]:
    context = await aiocoap.Context.create_client_context()
    yield context
    await context.shutdown()


async def _request(coap: aiocoap.Context, code: C, uri: str, payload: bytes = b"",
                   content_format: int | None = None) -> aiocoap.Message:
    msg = aiocoap.Message(code=code, uri=uri, payload=payload)
    if content_format is not None:
        msg.opt.content_format = content_format
    return await asyncio.wait_for(coap.request(msg).response, 10)


async def _topic(coap: aiocoap.Context, port: int, name: str) -> str:
    """Create topic ``name`` as a node would; its topic-data URI."""
    config = {d.TOPIC_NAME: name, d.RESOURCE_TYPE: d.RT_DATA}
    reply = await _request(coap, C.POST, f"coap://127.0.0.1:{port}/ps",
                           cbor2.dumps(config), d.CONTENT_FORMAT_PUBSUB)
    assert reply.code == C.CREATED, reply.payload
    return f"coap://127.0.0.1:{port}{cbor2.loads(reply.payload)[d.TOPIC_DATA]}"


async def test_nodes_publishing_to_the_gateway_broker(server: LwM2MServer, broker: Broker,
                                                      coap: aiocoap.Context,
                                                      make_gateway: GatewayFactory) -> None:
    gateway: LwM2MGateway = await make_gateway(server.port, end_devices=0)
    nodes = BrokerNodes(gateway, broker, online_window=0.5)
    nodes.start()
    try:
        events = server.events.stream()
        temperature = await _topic(coap, broker.port, "node-7/3303/0/5700")
        await _topic(coap, broker.port, "not a node topic")
        added = await next_event(events, EndDeviceAdded)
        assert added.registration.endpoint == "gw-1/node-7"
        # The node publishes (2.01 first, then 2.04), then sleeps: no one reaches it again.
        assert (await _request(coap, C.PUT, temperature, b"21.5", 0)).code == C.CREATED
        assert (await _request(coap, C.PUT, temperature, b"22.75", 0)).code == C.CHANGED
        await eventually(lambda: nodes.devices["node-7"].state.get(4) == 2)
        await eventually(lambda: any(
            (o.object_id, o.instance_id) == (3303, 0)
            for r in server.end_devices if r.prefix == "node-7" for o in r.objects))
        read = await server.read("gw-1", "/node-7/3303/0/5700")
        assert read.code == Code.CONTENT and read.content.value == 22.75
        state = (await server.read("gw-1", f"/node-7/{NODE_STATE_OBJECT}/0")).content
        values = {rid: res.value for rid, res in state.resources.items()}
        assert values[0] is True and values[4] == 2 and values[7] == "127.0.0.1"
        assert values[5] == "node-7/3303/0/5700"
        # The server observes the node's value: each publication is a notification.
        assert (await server.observe("gw-1", "/node-7/3303/0/5700")).code == Code.CONTENT
        await _request(coap, C.PUT, temperature, b"23.0", 0)
        note = await next_event(events, NotificationReceived)
        assert note.response.content.value == 23.0
        # Silent past the online window, and no subscription: offline, values kept.
        await asyncio.sleep(0.6)
        nodes.refresh_online()
        state = (await server.read("gw-1", f"/node-7/{NODE_STATE_OBJECT}/0/0")).content
        assert state.value is False
        assert (await server.read("gw-1", "/node-7/3303/0/5700")).content.value == 23.0
        # A server's Write is published to the node's topic.
        label = await _topic(coap, broker.port, "node-7/3303/0/5750")
        await eventually(lambda: LwM2MPath(3303, 0, 5750) in nodes.devices["node-7"].topics)
        assert (await server.write("gw-1", "/node-7/3303/0/5750", "porch")).code == \
            Code.CHANGED
        reply = await _request(coap, C.GET, label)
        assert reply.payload == b"porch"
    finally:
        await nodes.stop()


async def test_stored_topics_come_back_as_end_devices(server: LwM2MServer,
                                                     broker: Broker,
                                                     make_gateway: GatewayFactory) -> None:
    """Topics the broker loaded (its store survives restarts) are fronted at once, with
    their last values: a node that sleeps through the gateway's restart is still read."""
    from aiolwm2m.pubsub import TopicConfig

    topic = await broker.create_topic(TopicConfig(name="n1/3303/0/5700", content_format=0))
    broker.publish(topic, b"19.5", 0)
    gateway: LwM2MGateway = await make_gateway(server.port, end_devices=0)
    nodes = BrokerNodes(gateway, broker)
    nodes.start()
    try:
        await eventually(lambda: len(server.end_devices) == 1)
        read = await server.read("gw-1", "/n1/3303/0/5700")
        assert read.content.value == 19.5
        assert LwM2MPath(3303, 0) in {LwM2MPath(o.object_id, o.instance_id)
                                      for r in server.end_devices for o in r.objects
                                      if o.instance_id is not None}
    finally:
        await nodes.stop()


@pytest.mark.parametrize(("name", "expected"), [
    ("node-7/3303/0/5700", ("node-7", LwM2MPath(3303, 0, 5700))),
    ("123/3303/0/5700", None),  # all digits: it would read as an object id
    ("a b/3303/0/5700", None),
    ("/3303/0/5700", None),
    ("node/3303/0", None),
    ("node/3303/0/5700/1", None),
    ("node/x/0/5700", None),
    ("node/3303/0/99999999999", None),
    ("node", None),
])
def test_which_topics_name_a_node_resource(name: str, expected: object) -> None:
    from aiolwm2m.gateway.broker_nodes import topic_target

    assert topic_target(name) == expected


async def test_topics_that_cannot_be_end_devices_are_left_alone(
        server: LwM2MServer, broker: Broker, make_gateway: GatewayFactory) -> None:
    """A publisher cannot take over an end device the gateway fronts already, nor make one
    whose prefix would read as an object id: those topics stay topics."""
    from aiolwm2m.pubsub import TopicConfig

    gateway: LwM2MGateway = await make_gateway(server.port, end_devices=1)
    nodes = BrokerNodes(gateway, broker)
    nodes.start()
    try:
        before = (await server.read("gw-1", "/dev0/3303/0/5700")).content.value
        for name in ("dev0/3303/0/5700", "123/3303/0/5700", "ok/3303/0/5700"):
            topic = await broker.create_topic(TopicConfig(name=name, content_format=0))
            broker.publish(topic, b"99.5", 0, publisher="127.0.0.1")
        await eventually(lambda: len(server.end_devices) == 2)
        assert set(nodes.devices) == {"ok"}
        assert {r.prefix for r in server.end_devices} == {"dev0", "ok"}
        assert (await server.read("gw-1", "/dev0/3303/0/5700")).content.value == before
        assert (await server.read("gw-1", "/ok/3303/0/5700")).content.value == 99.5
        assert (await server.read("gw-1", "/123/3303/0/5700")).code == Code.NOT_FOUND
    finally:
        await nodes.stop()
