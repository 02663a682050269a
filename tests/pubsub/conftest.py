"""A broker on loopback and a CoAP client of our own stack to talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import cbor2
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.pubsub import Broker, BrokerConfig, BrokerLimits
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.transport.udp import UdpEndpoint


class Client:
    """Requests to one broker, with the draft's shapes spelled out once."""

    def __init__(self, endpoint: UdpEndpoint, port: int) -> None:
        self.endpoint = endpoint
        self.addr = ("127.0.0.1", port)

    async def send(self, method: int, path: str | tuple[str, ...], *, payload: bytes = b"",
                   content_format: int | None = None, query: tuple[str, ...] = (),
                   accept: int | None = None) -> Message:
        msg = Message.request(method, path, payload=payload, content_format=content_format,
                              query=query, accept=accept)
        return await self.endpoint.request(msg, self.addr, timeout=10.0)

    async def create(self, props: dict[int, Any]) -> Message:
        return await self.send(Code.POST, "ps", payload=cbor2.dumps(props),
                               content_format=d.CONTENT_FORMAT_PUBSUB)

    async def create_topic(self, name: str, extra: dict[int, Any] | None = None
                           ) -> tuple[str, str]:
        """Create a topic; returns its path and its topic-data path."""
        props: dict[int, Any] = {d.TOPIC_NAME: name, d.RESOURCE_TYPE: d.RT_DATA}
        props.update(extra or {})
        reply = await self.create(props)
        assert reply.code == Code.CREATED, reply.payload
        return "/" + "/".join(reply.location_path), cbor2.loads(reply.payload)[d.TOPIC_DATA]

    async def publish(self, data: str, payload: bytes, content_format: int | None = 0
                      ) -> Message:
        return await self.send(Code.PUT, data, payload=payload, content_format=content_format)

    async def subscribe(self, data: str) -> Any:
        return await self.endpoint.observe(Message.request(Code.GET, data), self.addr)


def limits(**kw: Any) -> BrokerLimits:
    return BrokerLimits(**kw)


async def start_broker(**kw: Any) -> Broker:
    kw.setdefault("hosts", ("127.0.0.1",))
    kw.setdefault("port", 0)
    kw.setdefault("store", "memory")
    broker = Broker(BrokerConfig(**kw))
    await broker.start()
    return broker


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = await start_broker()
    yield b
    await b.stop()


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[Client]:
    ep = await UdpEndpoint.create("127.0.0.1", 0)
    yield Client(ep, broker.port)
    await ep.close()


async def new_client(broker: Broker) -> Client:
    return Client(await UdpEndpoint.create("127.0.0.1", 0), broker.port)
