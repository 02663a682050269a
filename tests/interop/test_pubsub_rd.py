"""The broker announces itself (CoP-001) to third-party Resource Directories: aiocoap's
``aiocoap-rd`` (RFC 9176) and libcoap's ``coap-rd`` (an early-draft RD: no updates, no
replacement by name, and it aborts on DELETE), found by unicast or multicast discovery."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import Link, parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.pubsub import Broker, BrokerConfig, TopicConfig
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import background, free_port, require

pytestmark = pytest.mark.interop


@pytest.fixture
async def probe() -> AsyncIterator[UdpEndpoint]:
    ep = await UdpEndpoint.create("127.0.0.1", 0)
    yield ep
    await ep.close()


async def get(probe: UdpEndpoint, port: int, path: str | tuple[str, ...],
              *query: str) -> Message:
    return await probe.request(Message.request(Code.GET, path, query=query),
                               ("127.0.0.1", port), timeout=5.0)


async def announced(rd: str, **kw: object) -> Broker:
    broker = Broker(BrokerConfig(hosts=("127.0.0.1",), port=0, store="memory", rd=rd,
                                 rd_endpoint="broker-under-test", **kw))  # type: ignore[arg-type]
    await broker.start()
    assert broker.announcer is not None
    await asyncio.wait_for(broker.announcer.registered.wait(), 20)
    return broker


async def until(check: object, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def lookup(probe: UdpEndpoint, port: int, *query: str) -> list[Link]:
    reply = await get(probe, port, ("resource-lookup", ""), *query)
    assert reply.code == Code.CONTENT
    return parse_link_format(reply.payload)


def aiocoap_rd() -> str:
    """aiocoap's RD, installed with aiocoap next to this Python."""
    script = Path(sys.executable).parent / "aiocoap-rd"
    return str(script) if script.exists() else require("aiocoap-rd")


async def test_aiocoap_rd_unicast_lifecycle(probe: UdpEndpoint) -> None:
    port = free_port()
    async with background(aiocoap_rd(), "--bind", f"127.0.0.1:{port}"):
        await asyncio.sleep(0.7)
        broker = await announced(f"coap://127.0.0.1:{port}", rd_lifetime=2)
        try:
            base = f"coap://127.0.0.1:{broker.port}"
            (found,) = await lookup(probe, port, "rt=core.ps")
            assert found.target == f"{base}/broker"
            (coll,) = await lookup(probe, port, f"rt={d.RT_COLLECTION}")
            assert coll.target == f"{base}/ps"
            assert broker.announcer is not None
            assert broker.announcer.updates_supported is True

            topic = await broker.create_topic(TopicConfig(name="announced"))
            await until(lambda: broker.announcer is not None
                        and broker.announcer.registrations >= 2)
            await asyncio.sleep(0.3)
            topics = await lookup(probe, port, f"rt={d.RT_TOPIC}")
            assert [link.target for link in topics] == [f"{base}{topic.path}"]
            await broker.delete_topic(topic)
            await until(lambda: broker.announcer is not None
                        and broker.announcer.registrations >= 3)
            await asyncio.sleep(0.3)
            assert await lookup(probe, port, f"rt={d.RT_TOPIC}") == []

            # lt=2: refreshed before it runs out, and still listed well after 2 s.
            await until(lambda: broker.announcer is not None
                        and broker.announcer.refreshes >= 3)
            assert len(await lookup(probe, port, "rt=core.ps")) == 1
        finally:
            await broker.stop()
        # Stopping removed the registration.
        reply = await get(probe, port, ("endpoint-lookup", ""))
        assert b"broker-under-test" not in reply.payload


async def test_libcoap_coap_rd_unicast(probe: UdpEndpoint) -> None:
    binary = require("coap-rd-notls")
    port = free_port()
    async with background(binary, "-A", "127.0.0.1", "-p", str(port)) as proc:
        broker = await announced(f"coap://127.0.0.1:{port}")
        try:
            assert broker.announcer is not None
            assert broker.announcer.updates_supported is False
            location = broker.announcer.location
            assert location is not None and location[0] == "rd"
            reply = await get(probe, port, location)
            assert [link.target for link in parse_link_format(reply.payload)] == [
                "/broker", "/ps"]
            await broker.create_topic(TopicConfig(name="t"))
            await until(lambda: broker.announcer is not None
                        and broker.announcer.registrations >= 2)
            reply = await get(probe, port, broker.announcer.location or ())
            assert len(parse_link_format(reply.payload)) == 3
        finally:
            await broker.stop()
        await asyncio.sleep(0.3)
        assert proc.returncode is None  # no DELETE: this coap-rd aborts on one


async def test_libcoap_coap_rd_found_by_multicast(probe: UdpEndpoint) -> None:
    binary = require("coap-rd-notls")
    port = free_port()
    # All-CoRE-Nodes on the loopback interface.
    async with background(binary, "-p", str(port), "-g", "224.0.1.187", "-G", "lo"):
        broker = await announced(f"coap://224.0.1.187:{port}",
                                 rd_multicast_interface="127.0.0.1")
        try:
            assert broker.announcer is not None and broker.announcer.target is not None
            assert broker.announcer.target.host == "127.0.0.1"
            assert broker.announcer.target.path == ("rd",)
            reply = await get(probe, port, broker.announcer.location or ())
            assert reply.code == Code.CONTENT and b'rt="core.ps"' in reply.payload
        finally:
            await broker.stop()
