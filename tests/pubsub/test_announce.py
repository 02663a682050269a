"""The broker announces itself (CoP-001) to our own Resource Directory, the one inside
the LwM2M server; and the announcer's sans-IO parts. (aiocoap's and libcoap's RDs:
tests/interop/test_pubsub_rd.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.pubsub import Broker, BrokerConfig, TopicConfig
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.pubsub.rd_discovery import RdTarget, registration_resource, uri_path
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.udp import UdpEndpoint


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    s = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await s.start()
    yield s
    await s.stop()


async def resource_lookup(probe: UdpEndpoint, port: int, query: str) -> list[str]:
    addr = ("127.0.0.1", port)
    found = await probe.request(Message.request(Code.GET, ".well-known/core",
                                                query=["rt=core.rd-lookup-res"]), addr)
    (lookup,) = parse_link_format(found.payload)
    reply = await probe.request(Message.request(Code.GET, uri_path(lookup.target),
                                                query=[query]), addr)
    assert reply.code == Code.CONTENT
    return [link.target for link in parse_link_format(reply.payload)]


async def test_broker_registers_with_the_servers_rd(server: LwM2MServer) -> None:
    broker = Broker(BrokerConfig(hosts=("127.0.0.1",), port=0, store="memory",
                                 rd=f"coap://127.0.0.1:{server.port}", rd_endpoint="ps-1"))
    await broker.start()
    probe = await UdpEndpoint.create("127.0.0.1", 0)
    try:
        assert broker.announcer is not None
        await asyncio.wait_for(broker.announcer.registered.wait(), 10)
        assert broker.announcer.updates_supported is True
        base = f"coap://127.0.0.1:{broker.port}"
        assert await resource_lookup(probe, server.port, "rt=core.ps") == [f"{base}/broker"]
        topic = await broker.create_topic(TopicConfig(name="t"))
        for _ in range(100):
            if await resource_lookup(probe, server.port, f"rt={d.RT_TOPIC}"):
                break
            await asyncio.sleep(0.05)
        assert await resource_lookup(probe, server.port, f"rt={d.RT_TOPIC}") == [
            f"{base}{topic.path}"]
        await broker.stop()
        assert await resource_lookup(probe, server.port, "rt=core.ps") == []
    finally:
        await probe.close()
        await broker.stop()


def test_registration_resource_from_discovery_answers() -> None:
    answer = b'</rd>;ins="default";rt="core.rd";ct=40,</x>;rt="core.rd-lookup-ep"'
    assert registration_resource(answer, "10.0.0.1", 5683) == RdTarget("10.0.0.1", 5683,
                                                                        ("rd",))
    aiocoap = b'</resourcedirectory/>;ct="40";rt="core.rd"'
    assert registration_resource(aiocoap, "::1", 1).path == ("resourcedirectory", "")
    absolute = b'<coap://[2001:db8::1]:61616/r>;rt="core.rd core.rd-group"'
    assert registration_resource(absolute, "::1", 1) == RdTarget("2001:db8::1", 61616,
                                                                 ("r",))
    assert registration_resource(b"</a>;rt=other", "::1", 1) is None
    assert registration_resource(b"<<<not link format", "::1", 1) is None


def test_bad_rd_uri_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="rd: "):
        BrokerConfig(rd="http://example.com/rd")
    with pytest.raises(ValueError, match="coap:// only"):
        BrokerConfig(rd="coaps://example.com")
