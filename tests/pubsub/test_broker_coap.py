"""The broker over real UDP sockets, interaction by interaction as the draft lists them."""

from __future__ import annotations

import asyncio
import time

import cbor2
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber, decode_uint
from aiolwm2m.pubsub import Broker
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.pubsub.cbor_reader import Tagged, read_item
from aiolwm2m.pubsub.events import TopicRemoved
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import Client, limits, new_client, start_broker

PS = d.CONTENT_FORMAT_PUBSUB


# -- discovery -------------------------------------------------------------------------------

async def test_discovery_names_the_broker_and_its_collection(client: Client) -> None:
    reply = await client.send(Code.GET, ".well-known/core", query=("rt=core.ps*",))
    links = {link.target: link.values("rt") for link in parse_link_format(reply.payload)}
    assert links == {"/broker": [d.RT_BROKER], "/ps": [d.RT_COLLECTION]}
    reply = await client.send(Code.GET, "broker")
    assert reply.content_format == d.CONTENT_FORMAT_LINK
    assert [link.target for link in parse_link_format(reply.payload)] == ["/ps"]


async def test_topics_stay_out_of_well_known_core(client: Client) -> None:
    await client.create_topic("a")
    reply = await client.send(Code.GET, ".well-known/core")
    assert [link.target for link in parse_link_format(reply.payload)] == ["/broker", "/ps"]


# -- the topic collection --------------------------------------------------------------------

async def test_create_answers_location_and_required_properties(client: Client) -> None:
    reply = await client.create({d.TOPIC_NAME: "living-room", d.RESOURCE_TYPE: d.RT_DATA})
    assert reply.code == Code.CREATED
    assert reply.content_format == PS
    assert reply.location_path[0] == "ps" and len(reply.location_path) == 2
    body = cbor2.loads(reply.payload)
    assert body[d.TOPIC_NAME] == "living-room" and body[d.RESOURCE_TYPE] == d.RT_DATA
    assert body[d.TOPIC_DATA].startswith("/ps/data/")


async def test_collection_get_and_rt_queries(client: Client) -> None:
    t1, data1 = await client.create_topic("one")
    t2, _ = await client.create_topic("two")
    reply = await client.send(Code.GET, "ps")
    assert reply.content_format == d.CONTENT_FORMAT_LINK
    assert {link.target for link in parse_link_format(reply.payload)} == {t1, t2}
    reply = await client.send(Code.GET, "ps", query=("rt=core.ps.data",))
    data_links = parse_link_format(reply.payload)
    assert len(data_links) == 2 and data1 in {link.target for link in data_links}
    assert all(link.has("obs") for link in data_links)
    reply = await client.send(Code.GET, "ps", query=("rt=core.ps.conf",))
    assert {link.target for link in parse_link_format(reply.payload)} == {t1, t2}


async def test_collection_fetch_filters_by_properties(client: Client) -> None:
    warm, _ = await client.create_topic("warm", {d.TOPIC_TYPE: "temperature"})
    await client.create_topic("wet", {d.TOPIC_TYPE: "humidity"})
    reply = await client.send(Code.FETCH, "ps", content_format=PS, payload=cbor2.dumps(
        {d.TOPIC_TYPE: "temperature", d.RESOURCE_TYPE: d.RT_DATA}))
    assert reply.code == Code.CONTENT
    assert [link.target for link in parse_link_format(reply.payload)] == [warm]
    reply = await client.send(Code.FETCH, "ps", content_format=60, payload=b"\xa0")
    assert reply.code == Code.UNSUPPORTED_CONTENT_FORMAT


async def test_previous_drafts_resource_type_is_accepted(client: Client) -> None:
    reply = await client.create({d.TOPIC_NAME: "old", d.RESOURCE_TYPE: "core.ps.conf"})
    assert reply.code == Code.CREATED
    assert cbor2.loads(reply.payload)[d.RESOURCE_TYPE] == "core.ps.conf"


@pytest.mark.parametrize(("props", "diagnostic"), [
    ({d.RESOURCE_TYPE: d.RT_DATA}, b"topic-name: required"),
    ({d.TOPIC_NAME: "x"}, b"resource-type: required"),
    ({d.TOPIC_NAME: 7, d.RESOURCE_TYPE: d.RT_DATA}, b"topic-name: must be a text string"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: "core.rd"}, b"resource-type: must be"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, d.MAX_SUBSCRIBERS: -1},
     b"max-subscribers: must be an unsigned integer"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, d.EXPIRATION_DATE: "2030-01-01"},
     b"expiration-date: must be an epoch date"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, d.OBSERVER_CHECK: 0},
     b"observer-check: must be 1.."),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, d.INITIALIZE: b"\x80"},
     b"initialize: needs topic-content-format"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, 42: 1}, b"unknown property 42"),
    ({d.TOPIC_NAME: "x", d.RESOURCE_TYPE: d.RT_DATA, d.TOPIC_DATA: "coap://elsewhere/x"},
     b"topic-data: this broker hosts topic-data at /ps/data/"),
])
async def test_malformed_configuration_names_the_key_and_creates_nothing(
        client: Client, broker: Broker, props: dict[int, object], diagnostic: bytes) -> None:
    reply = await client.create(props)
    assert reply.code == Code.BAD_REQUEST
    assert reply.payload.startswith(diagnostic), reply.payload
    assert broker.topics() == []
    assert broker.refusals.by_reason["pubsub-bad-config"] == 1


async def test_not_cbor_or_wrong_format_is_refused(client: Client, broker: Broker) -> None:
    reply = await client.send(Code.POST, "ps", payload=b"\xa1\x00", content_format=PS)
    assert reply.code == Code.BAD_REQUEST and b"malformed CBOR" in reply.payload
    reply = await client.send(Code.POST, "ps", payload=b'{"0": "x"}', content_format=50)
    assert reply.code == Code.UNSUPPORTED_CONTENT_FORMAT
    assert broker.topics() == []


async def test_duplicate_topic_name_is_refused(client: Client, broker: Broker) -> None:
    await client.create_topic("same")
    reply = await client.create({d.TOPIC_NAME: "same", d.RESOURCE_TYPE: d.RT_DATA})
    assert reply.code == Code.BAD_REQUEST and reply.payload == b"topic-name: already in use"
    assert len(broker.topics()) == 1


async def test_creator_may_choose_the_topic_data_path(client: Client) -> None:
    _, data = await client.create_topic("chosen", {d.TOPIC_DATA: "ps/data/kitchen"})
    assert data == "/ps/data/kitchen"
    assert (await client.publish(data, b"1")).code == Code.CREATED
    reply = await client.create({d.TOPIC_NAME: "other", d.RESOURCE_TYPE: d.RT_DATA,
                                 d.TOPIC_DATA: "/ps/data/kitchen"})
    assert reply.payload == b"topic-data: already in use"


# -- a topic's configuration -----------------------------------------------------------------

async def test_topic_get_and_both_fetch_forms(client: Client) -> None:
    topic, data = await client.create_topic("t", {d.TOPIC_CONTENT_FORMAT: 112,
                                                  d.TOPIC_TYPE: "temperature"})
    reply = await client.send(Code.GET, topic)
    assert reply.content_format == PS
    assert cbor2.loads(reply.payload)[d.TOPIC_CONTENT_FORMAT] == 112
    # -21: an application/cbor array of keys
    reply = await client.send(Code.FETCH, topic, content_format=60,
                              payload=cbor2.dumps([1, 3]))
    assert cbor2.loads(reply.payload) == {1: data, 3: 112}
    # -20: {conf-filter(9): [...]} in application/core-pubsub+cbor
    reply = await client.send(Code.FETCH, topic, content_format=PS,
                              payload=cbor2.dumps({9: [4, 6]}))
    assert cbor2.loads(reply.payload) == {4: "temperature"}


async def test_post_replaces_and_resets_what_it_leaves_out(client: Client) -> None:
    topic, data = await client.create_topic("t", {d.TOPIC_TYPE: "temperature",
                                                  d.MAX_SUBSCRIBERS: 5})
    reply = await client.send(Code.POST, topic, content_format=PS, payload=cbor2.dumps(
        {d.TOPIC_NAME: "t", d.TOPIC_DATA: data, d.RESOURCE_TYPE: d.RT_DATA,
         d.OBSERVER_CHECK: 60}))
    assert reply.code == Code.CHANGED
    body = cbor2.loads(reply.payload)
    assert body[d.OBSERVER_CHECK] == 60
    assert d.TOPIC_TYPE not in body and d.MAX_SUBSCRIBERS not in body


async def test_immutable_properties_cannot_change(client: Client, broker: Broker) -> None:
    topic, _ = await client.create_topic("t")
    for method in (Code.POST, Code.IPATCH):
        reply = await client.send(method, topic, content_format=PS,
                                  payload=cbor2.dumps({d.TOPIC_NAME: "renamed"}))
        assert reply.code == Code.BAD_REQUEST
        assert reply.payload == b"topic-name: cannot change once the topic exists"
    assert broker.topic_named("t") is not None and broker.topic_named("renamed") is None


async def test_ipatch_changes_only_what_it_names(client: Client) -> None:
    topic, _ = await client.create_topic("t", {d.TOPIC_TYPE: "temperature",
                                               d.MAX_SUBSCRIBERS: 5})
    expires = int(time.time()) + 3600
    reply = await client.send(Code.IPATCH, topic, content_format=PS, payload=cbor2.dumps(
        {d.EXPIRATION_DATE: cbor2.CBORTag(1, expires), d.MAX_SUBSCRIBERS: None}))
    assert reply.code == Code.CHANGED
    body = read_item(reply.payload)
    assert isinstance(body, dict)
    assert body[d.TOPIC_TYPE] == "temperature" and d.MAX_SUBSCRIBERS not in body
    assert body[d.EXPIRATION_DATE] == Tagged(1, expires)


async def test_delete_topic_ends_subscriptions_with_4_04(client: Client, broker: Broker
                                                         ) -> None:
    topic, data = await client.create_topic("t")
    await client.publish(data, b"1")
    sub = await client.subscribe(data)
    assert (await sub.first).observe is not None
    reply = await client.send(Code.DELETE, topic)
    assert reply.code == Code.DELETED
    last = await asyncio.wait_for(sub.__anext__(), 5)
    assert last.code == Code.NOT_FOUND and last.observe is None
    assert (await client.send(Code.GET, topic)).code == Code.NOT_FOUND
    assert (await client.send(Code.GET, data)).code == Code.NOT_FOUND
    assert (await client.send(Code.DELETE, topic)).code == Code.NOT_FOUND
    assert broker.subscribers == 0


# -- topic data ------------------------------------------------------------------------------

async def test_publish_2_01_first_then_2_04(client: Client, broker: Broker) -> None:
    _, data = await client.create_topic("t")
    assert (await client.send(Code.GET, data)).code == Code.NOT_FOUND  # half created
    assert (await client.publish(data, b"21.5")).code == Code.CREATED
    assert (await client.publish(data, b"22.0")).code == Code.CHANGED
    reply = await client.send(Code.GET, data)
    assert reply.code == Code.CONTENT and reply.payload == b"22.0"
    assert reply.content_format == 0
    node = broker.nodes.get("127.0.0.1")
    assert node is not None and node.publishes == 2


async def test_subscribers_get_every_publication(broker: Broker, client: Client) -> None:
    _, data = await client.create_topic("t")
    await client.publish(data, b"0")
    others = [await new_client(broker) for _ in range(3)]
    try:
        subs = [await c.subscribe(data) for c in others]
        assert [(await s.first).payload for s in subs] == [b"0"] * 3
        assert broker.subscribers == 3
        for i in range(1, 4):
            await client.publish(data, str(i).encode())
            for s in subs:
                note = await asyncio.wait_for(s.__anext__(), 5)
                assert note.payload == str(i).encode() and note.observe is not None
    finally:
        for c in others:
            await c.endpoint.close()


async def test_delete_data_sends_4_04_and_returns_to_half_created(client: Client) -> None:
    topic, data = await client.create_topic("t")
    await client.publish(data, b"1")
    sub = await client.subscribe(data)
    await sub.first
    assert (await client.send(Code.DELETE, data)).code == Code.DELETED
    last = await asyncio.wait_for(sub.__anext__(), 5)
    assert last.code == Code.NOT_FOUND
    assert (await client.send(Code.GET, data)).code == Code.NOT_FOUND
    assert (await client.send(Code.GET, topic)).code == Code.CONTENT  # the topic remains
    assert (await client.send(Code.DELETE, data)).code == Code.NOT_FOUND
    assert (await client.publish(data, b"2")).code == Code.CREATED  # first again


async def test_initialize_makes_the_topic_subscribable_at_once(client: Client) -> None:
    _, data = await client.create_topic("t", {d.INITIALIZE: b"\x80",
                                              d.TOPIC_CONTENT_FORMAT: 60})
    reply = await client.send(Code.GET, data)
    assert reply.code == Code.CONTENT and reply.payload == b"\x80"
    assert reply.content_format == 60
    assert (await client.publish(data, b"\x81\x01", 60)).code == Code.CHANGED


async def test_wrong_content_format_is_4_15(client: Client, broker: Broker) -> None:
    _, data = await client.create_topic("t", {d.TOPIC_CONTENT_FORMAT: 110})
    for cf in (0, None):
        reply = await client.publish(data, b"[]", cf)
        assert reply.code == Code.UNSUPPORTED_CONTENT_FORMAT
        assert reply.payload == b"this topic takes content format 110"
    assert (await client.send(Code.GET, data)).code == Code.NOT_FOUND
    assert (await client.publish(data, b"[]", 110)).code == Code.CREATED
    assert broker.refusals.by_reason["pubsub-content-format"] == 2


async def test_publisher_over_its_rate_gets_4_29_with_max_age() -> None:
    broker = await start_broker(limits=limits(publish_rate=0.5, publish_burst=2))
    client = await new_client(broker)
    try:
        _, data = await client.create_topic("t")
        assert (await client.publish(data, b"1")).code == Code.CREATED
        assert (await client.publish(data, b"2")).code == Code.CHANGED
        reply = await client.publish(data, b"3")
        assert reply.code == Code.TOO_MANY_REQUESTS
        max_age = reply.get_option(OptionNumber.MAX_AGE)
        assert max_age is not None and decode_uint(max_age) == 2
        assert (await client.send(Code.GET, data)).payload == b"2"
        assert broker.refusals.by_reason["pubsub-rate-limited"] == 1
    finally:
        await client.endpoint.close()
        await broker.stop()


async def test_max_subscribers_answers_2_05_without_observe(client: Client,
                                                            broker: Broker) -> None:
    _, data = await client.create_topic("t", {d.MAX_SUBSCRIBERS: 1})
    await client.publish(data, b"1")
    first = await client.subscribe(data)
    assert (await first.first).observe is not None
    second_client = await new_client(broker)
    try:
        second = await second_client.subscribe(data)
        reply = await second.first
        assert reply.code == Code.CONTENT and reply.payload == b"1"
        assert reply.observe is None
        assert broker.subscribers == 1
        # A renewal by the one subscriber is no new subscription.
        again = await client.endpoint.request(
            Message.request(Code.GET, data, observe=0, token=first.request.token),
            client.addr)
        assert again.observe is not None and broker.subscribers == 1
    finally:
        await second_client.endpoint.close()


async def test_lowering_max_subscribers_ends_the_newest_with_4_04(client: Client,
                                                                  broker: Broker) -> None:
    topic, data = await client.create_topic("t", {d.MAX_SUBSCRIBERS: 3})
    await client.publish(data, b"1")
    others = [await new_client(broker) for _ in range(3)]
    try:
        subs = [await c.subscribe(data) for c in others]
        for s in subs:
            assert (await s.first).observe is not None
        assert broker.subscribers == 3
        reply = await client.send(Code.IPATCH, topic, content_format=PS,
                                  payload=cbor2.dumps({d.MAX_SUBSCRIBERS: 1}))
        assert reply.code == Code.CHANGED
        for s in subs[1:]:
            note = await asyncio.wait_for(s.__anext__(), 5)
            assert note.code == Code.NOT_FOUND
        assert broker.subscribers == 1
        await client.publish(data, b"2")
        assert (await asyncio.wait_for(subs[0].__anext__(), 5)).payload == b"2"
    finally:
        for c in others:
            await c.endpoint.close()


async def test_expiration_date_deletes_the_topic() -> None:
    now = [1_700_000_000.0]
    broker = await start_broker(clock=lambda: now[0])
    client = await new_client(broker)
    removed: list[str] = []
    broker.on(lambda e: removed.append(e.reason) if isinstance(e, TopicRemoved) else None)
    try:
        reply = await client.create({d.TOPIC_NAME: "t", d.RESOURCE_TYPE: d.RT_DATA,
                                     d.EXPIRATION_DATE: cbor2.CBORTag(1, now[0] - 1)})
        assert reply.payload == b"expiration-date: already passed"
        topic, data = await client.create_topic(
            "t", {d.EXPIRATION_DATE: cbor2.CBORTag(1, now[0] + 60)})
        await client.publish(data, b"1")
        sub = await client.subscribe(data)
        await sub.first
        assert await broker.expire_due() == 0
        now[0] += 61
        assert await broker.expire_due() == 1
        assert removed == ["expired"]
        assert (await asyncio.wait_for(sub.__anext__(), 5)).code == Code.NOT_FOUND
        assert (await client.send(Code.GET, topic)).code == Code.NOT_FOUND
    finally:
        await client.endpoint.close()
        await broker.stop()


async def test_expiry_timer_runs_by_itself(client: Client, broker: Broker) -> None:
    gone = asyncio.Event()
    broker.on(lambda e: gone.set() if isinstance(e, TopicRemoved) else None)
    await client.create_topic("t", {d.EXPIRATION_DATE: cbor2.CBORTag(1, time.time() + 0.5)})
    await asyncio.wait_for(gone.wait(), 10)
    assert broker.topics() == []


async def test_observer_check_sends_confirmable_notifications(client: Client,
                                                              broker: Broker) -> None:
    _, data = await client.create_topic("t", {d.OBSERVER_CHECK: 1})
    await client.publish(data, b"1")
    sub = await client.subscribe(data)
    await sub.first
    # No publication: the broker itself re-checks the subscriber within observer-check.
    note = await asyncio.wait_for(sub.__anext__(), 10)
    assert note.payload == b"1" and note.observe is not None
    assert broker.subscribers == 1


async def test_topic_limit_is_4_03_and_counted() -> None:
    broker = await start_broker(limits=limits(max_topics=2))
    client = await new_client(broker)
    try:
        await client.create_topic("a")
        await client.create_topic("b")
        reply = await client.create({d.TOPIC_NAME: "c", d.RESOURCE_TYPE: d.RT_DATA})
        assert reply.code == Code.FORBIDDEN
        assert reply.payload == b"the broker holds its maximum of 2 topics"
        assert broker.refusals.by_reason["pubsub-topic-limit"] == 1
    finally:
        await client.endpoint.close()
        await broker.stop()


async def test_value_over_the_size_limit_is_4_13_with_size1() -> None:
    broker = await start_broker(limits=limits(max_value_size=100))
    client = await new_client(broker)
    try:
        _, data = await client.create_topic("t")
        reply = await client.publish(data, b"x" * 101)
        assert reply.code == Code.REQUEST_ENTITY_TOO_LARGE
        size1 = reply.get_option(OptionNumber.SIZE1)
        assert size1 is not None and decode_uint(size1) == 100
        assert (await client.publish(data, b"x" * 100)).code == Code.CREATED
    finally:
        await client.endpoint.close()
        await broker.stop()


async def test_serves_ipv4_and_ipv6_loopback_on_one_port() -> None:
    """What a gateway asks for: the broker on 127.0.0.1 and ::1, the same port."""
    broker = await start_broker(hosts=("127.0.0.1", "::1"))
    v4 = await new_client(broker)
    v6 = Client(await UdpEndpoint.create("::1", 0), broker.port)
    v6.addr = ("::1", broker.port)
    try:
        assert {e.port for e in broker.endpoints} == {broker.port}
        _, data = await v4.create_topic("both")
        await v4.publish(data, b"1")
        sub = await v6.subscribe(data)
        assert (await sub.first).payload == b"1"
        await v4.publish(data, b"2")
        assert (await asyncio.wait_for(sub.__anext__(), 5)).payload == b"2"
        assert broker.subscriber_count(broker.topics()[0]) == 1
    finally:
        await v4.endpoint.close()
        await v6.endpoint.close()
        await broker.stop()
