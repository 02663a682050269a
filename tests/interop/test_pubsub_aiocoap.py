"""aiocoap's client (an independent CoAP stack) on our pub/sub broker: discovery, topic
creation and configuration, publication, subscription, deletion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiocoap
import cbor2
import pytest

from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.pubsub import Broker, BrokerConfig, BrokerLimits
from aiolwm2m.pubsub import drafts as d

pytestmark = pytest.mark.interop
PS = d.CONTENT_FORMAT_PUBSUB


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    b = Broker(BrokerConfig(hosts=("::",), port=0, store="memory",
                            limits=BrokerLimits(publish_rate=0)))
    await b.start()
    yield b
    await b.stop()


def base(broker: Broker) -> str:
    return f"coap://[::1]:{broker.port}"


async def ask(ctx: aiocoap.Context, code: aiocoap.Code, uri: str, payload: bytes = b"",
              content_format: int | None = None) -> aiocoap.Message:
    msg = aiocoap.Message(code=code, uri=uri, payload=payload)
    if content_format is not None:
        msg.opt.content_format = content_format
    return await asyncio.wait_for(ctx.request(msg).response, 20)


async def test_aiocoap_discovers_creates_publishes_and_subscribes(
        broker: Broker, ctx: aiocoap.Context) -> None:
    uri = base(broker)
    found = await ask(ctx, aiocoap.GET, f"{uri}/.well-known/core?rt=core.ps.coll")
    (collection,) = parse_link_format(found.payload)
    assert collection.target == "/ps"

    created = await ask(ctx, aiocoap.POST, uri + collection.target, cbor2.dumps(
        {d.TOPIC_NAME: "room2", d.RESOURCE_TYPE: d.RT_DATA, d.TOPIC_CONTENT_FORMAT: 0}), PS)
    assert created.code == aiocoap.CREATED
    topic_path = "/" + "/".join(created.opt.location_path)
    data = cbor2.loads(created.payload)[d.TOPIC_DATA]

    first = await ask(ctx, aiocoap.PUT, uri + data, b"21.0", 0)
    assert first.code == aiocoap.CREATED
    again = await ask(ctx, aiocoap.PUT, uri + data, b"21.5", 0)
    assert again.code == aiocoap.CHANGED

    observe = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri + data, observe=0))
    initial = await asyncio.wait_for(observe.response, 20)
    assert initial.payload == b"21.5" and initial.opt.observe is not None
    notes = observe.observation.__aiter__()
    seen = []
    for value in (b"22.0", b"22.5"):
        assert (await ask(ctx, aiocoap.PUT, uri + data, value, 0)).code == aiocoap.CHANGED
        seen.append((await asyncio.wait_for(notes.__anext__(), 20)).payload)
    assert seen == [b"22.0", b"22.5"]

    wrong = await ask(ctx, aiocoap.PUT, uri + data, b"{}", 50)
    assert wrong.code == aiocoap.UNSUPPORTED_CONTENT_FORMAT

    fetched = await ask(ctx, aiocoap.FETCH, uri + topic_path, cbor2.dumps([d.TOPIC_DATA]), 60)
    assert cbor2.loads(fetched.payload) == {d.TOPIC_DATA: data}
    patched = await ask(ctx, aiocoap.Code.iPATCH, uri + topic_path,
                        cbor2.dumps({d.TOPIC_TYPE: "temperature"}), PS)
    assert patched.code == aiocoap.CHANGED
    assert cbor2.loads(patched.payload)[d.TOPIC_TYPE] == "temperature"
    filtered = await ask(ctx, aiocoap.FETCH, uri + "/ps",
                         cbor2.dumps({d.TOPIC_TYPE: "temperature"}), PS)
    assert [link.target for link in parse_link_format(filtered.payload)] == [topic_path]

    deleted = await ask(ctx, aiocoap.DELETE, uri + topic_path)
    assert deleted.code == aiocoap.DELETED
    # The final 4.04 ends aiocoap's observation.
    with pytest.raises((StopAsyncIteration, aiocoap.error.Error)):
        await asyncio.wait_for(notes.__anext__(), 20)
    assert broker.topics() == [] and broker.subscribers == 0
