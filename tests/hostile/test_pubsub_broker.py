"""Attacks on the pub/sub broker, over real sockets with bounded counts: a subscribe from a
forged address (amplification), floods of topics, subscriptions and publications from one
address, oversized uploads and malformed configurations. Each time the broker holds no
more than its limits and keeps serving everyone else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import cbor2
import pytest

from aiolwm2m.coap.codec import decode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.pubsub import Broker, BrokerConfig, BrokerLimits
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.transport.udp import UdpEndpoint

from ..pubsub.conftest import Client
from ..transport.raw_peer import RawPeer

PS = d.CONTENT_FORMAT_PUBSUB
FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=2)


async def broker_with(**limits: object) -> Broker:
    broker = Broker(BrokerConfig(hosts=("::",), port=0, store="memory", transmission=FAST,
                                 limits=BrokerLimits(**limits)))  # type: ignore[arg-type]
    await broker.start()
    return broker


@pytest.fixture
async def client() -> AsyncIterator[UdpEndpoint]:
    ep = await UdpEndpoint.create("127.0.0.1", 0)
    yield ep
    await ep.close()


async def test_forged_subscriber_gets_one_notification_and_is_dropped(
        client: UdpEndpoint) -> None:
    """The victim of a forged subscribe never acknowledges: it receives the subscribe's
    reply and one notification with its retransmissions, not every publication."""
    broker = await broker_with(publish_rate=0)
    victim = await RawPeer.open("127.0.0.1")
    honest = Client(client, broker.port)
    try:
        _, data = await honest.create_topic("busy")
        value = b"v" * 500
        await honest.publish(data, value)
        subscribe = Message.request(Code.GET, data, observe=0, token=b"\x01\x02")
        subscribe.mid = 7
        victim.send(subscribe, ("127.0.0.1", broker.port))
        watcher = await honest.subscribe(data)  # an honest subscriber alongside
        await watcher.first
        await asyncio.sleep(0.2)
        for i in range(40):
            await honest.publish(data, value[:-2] + b"%02d" % i)
        # The last value reaches the honest subscriber.
        deadline = time.monotonic() + 10
        last = b""
        while last != value[:-2] + b"39" and time.monotonic() < deadline:
            last = (await asyncio.wait_for(watcher.__anext__(), 10)).payload
        assert last == value[:-2] + b"39"
        # The forged subscription times out (2 retransmissions of 0.2 s, 0.4 s).
        deadline = time.monotonic() + 10
        while broker.subscribers > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert broker.subscribers == 1
        received = []
        while not victim.queue.empty():
            received.append(victim.queue.get_nowait()[0])
        kinds = [(decode_udp(r).mtype, decode_udp(r).mid) for r in received]
        notifications = [k for k in kinds if k[0] == MessageType.CON]
        assert len(received) <= 1 + 1 + FAST.max_retransmit, kinds
        assert len({mid for _, mid in notifications}) == 1  # one notification, resent
        assert sum(len(r) for r in received) <= 4 * (len(value) + 40)
    finally:
        victim.close()
        await broker.stop()


async def test_a_subscriber_that_acknowledges_gets_what_it_missed(client: UdpEndpoint
                                                                  ) -> None:
    broker = await broker_with(publish_rate=0)
    honest = Client(client, broker.port)
    other = Client(await UdpEndpoint.create("127.0.0.1", 0), broker.port)
    try:
        _, data = await honest.create_topic("t")
        await honest.publish(data, b"0")
        sub = await other.subscribe(data)
        await sub.first
        for i in range(1, 30):  # a burst while the first notification is unacknowledged
            await honest.publish(data, str(i).encode())
        seen = []
        while not seen or seen[-1] != b"29":
            seen.append((await asyncio.wait_for(sub.__anext__(), 10)).payload)
        assert seen[-1] == b"29" and len(seen) <= 29
    finally:
        await other.endpoint.close()
        await broker.stop()


async def test_topic_flood_from_one_address(client: UdpEndpoint) -> None:
    broker = await broker_with(max_topics_per_address=25, max_topics=40, publish_rate=0)
    attacker = Client(client, broker.port)
    bystander = Client(await UdpEndpoint.create("::1", 0), broker.port)
    bystander.addr = ("::1", broker.port)
    try:
        codes = [(await attacker.create({d.TOPIC_NAME: f"t{i}", d.RESOURCE_TYPE: d.RT_DATA}
                                        )).code for i in range(60)]
        assert codes.count(Code.CREATED) == 25
        assert codes.count(Code.FORBIDDEN) == 35
        assert len(broker.table) == 25
        reply = await bystander.create({d.TOPIC_NAME: "mine", d.RESOURCE_TYPE: d.RT_DATA})
        assert reply.code == Code.CREATED
        assert broker.refusals.by_reason["pubsub-topic-limit"] == 35
    finally:
        await bystander.endpoint.close()
        await broker.stop()


async def test_configuration_changes_are_rate_limited(client: UdpEndpoint) -> None:
    """Each change is written to disk before its reply: a flood is refused, not queued."""
    broker = await broker_with(publish_rate=2.0, publish_burst=5)
    attacker = Client(client, broker.port)
    try:
        topic, _ = await attacker.create_topic("t")
        codes = [(await attacker.send(Code.IPATCH, topic, content_format=PS, payload=cbor2.dumps(
            {d.MAX_SUBSCRIBERS: i}))).code for i in range(30)]
        assert codes.count(Code.CHANGED) <= 8
        refused = [c for c in codes if c == Code.TOO_MANY_REQUESTS]
        assert len(refused) == 30 - codes.count(Code.CHANGED)
        reply = await attacker.create({d.TOPIC_NAME: "u", d.RESOURCE_TYPE: d.RT_DATA})
        assert reply.code == Code.TOO_MANY_REQUESTS
        assert reply.payload == b"changing topics too fast"
    finally:
        await broker.stop()


async def test_subscription_flood_from_one_address(client: UdpEndpoint) -> None:
    broker = await broker_with(max_subscribers_per_address=10, publish_rate=0)
    owner = Client(client, broker.port)
    attacker = Client(await UdpEndpoint.create("127.0.0.1", 0), broker.port)
    try:
        datas = []
        for i in range(30):
            _, data = await owner.create_topic(f"t{i}")
            await owner.publish(data, b"1")
            datas.append(data)
        firsts = [await (await attacker.subscribe(data)).first for data in datas]
        assert sum(1 for f in firsts if f.observe is not None) == 10
        assert all(f.code == Code.CONTENT for f in firsts)  # the value, without Observe
        assert broker.subscribers == 10
        assert broker.refusals.by_reason["pubsub-subscriber-limit"] == 20
    finally:
        await attacker.endpoint.close()
        await broker.stop()


async def test_publication_flood_is_rate_limited(client: UdpEndpoint) -> None:
    broker = await broker_with(publish_rate=5.0, publish_burst=10)
    attacker = Client(client, broker.port)
    try:
        _, data = await attacker.create_topic("t")
        codes = [(await attacker.publish(data, str(i).encode())).code for i in range(50)]
        accepted = sum(1 for c in codes if c in (Code.CREATED, Code.CHANGED))
        assert 10 <= accepted <= 20  # the burst, and what refilled meanwhile
        assert codes.count(Code.TOO_MANY_REQUESTS) == 50 - accepted
        assert len(broker.rate) == 2  # its publications to "t", its configuration changes
    finally:
        await broker.stop()


async def test_oversized_uploads_are_refused_at_the_first_block(client: UdpEndpoint) -> None:
    broker = await broker_with(max_value_size=2000)
    attacker = Client(client, broker.port)
    try:
        _, data = await attacker.create_topic("t")
        reply = await attacker.publish(data, b"x" * 40_000)  # block-wise, 1 KiB blocks
        assert reply.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert broker.topics()[0].value is None
        reply = await attacker.create({d.TOPIC_NAME: "big", d.RESOURCE_TYPE: d.RT_DATA,
                                       d.INITIALIZE: b"x" * 40_000,
                                       d.TOPIC_CONTENT_FORMAT: 0})
        assert reply.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert len(broker.table) == 1
        dispatcher = broker.endpoints[0].dispatcher
        assert dispatcher.block1.buffered == 0
    finally:
        await broker.stop()


@pytest.mark.parametrize("payload", [
    b"\x81" * 5000,  # arrays nested 5,000 deep
    b"\xbb" + b"\xff" * 8,  # a map claiming 2**64-1 entries
    b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00",  # a 4 GiB byte string
    cbor2.dumps({i: i for i in range(300)}),  # many unknown keys
    b"\xa1\x00" + b"\x9f" * 100,  # indefinite lengths
])
async def test_malformed_configurations_answer_4_00_and_nothing_more(
        client: UdpEndpoint, payload: bytes) -> None:
    broker = await broker_with()
    attacker = Client(client, broker.port)
    try:
        started = time.process_time()
        reply = await attacker.send(Code.POST, "ps", payload=payload, content_format=PS)
        assert time.process_time() - started < 1.0
        assert reply.code == Code.BAD_REQUEST
        assert len(reply.payload) < 120  # a diagnostic, never an echo
        assert len(broker.table) == 0
        assert (await attacker.send(Code.GET, "ps")).code == Code.CONTENT
    finally:
        await broker.stop()
