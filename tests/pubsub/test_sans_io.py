"""The broker's I/O-free parts: the strict CBOR reader, configuration round trips, the
rate limiter, the node table, per-address accounting."""

from __future__ import annotations

import cbor2
import pytest

from aiolwm2m.pubsub import drafts as d
from aiolwm2m.pubsub.cbor_reader import CborError, Tagged, read_item
from aiolwm2m.pubsub.limits import BrokerLimits, address_key
from aiolwm2m.pubsub.nodes import NodeTable
from aiolwm2m.pubsub.rate_limit import PublishRateLimiter
from aiolwm2m.pubsub.topic_config import (
    ConfigError,
    TopicConfig,
    decode_properties,
    encode_config,
    for_creation,
    matches,
)
from aiolwm2m.pubsub.topics import TopicTable


@pytest.mark.parametrize(("hexdata", "reason"), [
    ("bf00ff", "indefinite-length items are not accepted"),
    ("5bffffffffffffffff", "string longer than the payload"),
    ("9b00000000ffffffff", "more elements than bytes left"),
    ("81818181818100", "nested too deep"),
    ("a2000100", "duplicate map key 0"),
    ("62c328", "text string is not UTF-8"),
    ("a100f8", "simple value 24 is not accepted"),
    ("0000", "1 bytes after the CBOR item"),
])
def test_cbor_reader_refuses_what_a_configuration_cannot_hold(hexdata: str,
                                                              reason: str) -> None:
    with pytest.raises(CborError) as info:
        read_item(bytes.fromhex(hexdata))
    assert info.value.reason == reason


def test_tag_1_keeps_its_number() -> None:
    raw = cbor2.dumps({d.EXPIRATION_DATE: cbor2.CBORTag(1, 1_700_000_000.5)})
    assert read_item(raw) == {5: Tagged(1, 1_700_000_000.5)}
    with pytest.raises(ConfigError, match="expiration-date: must be an epoch date"):
        decode_properties(cbor2.dumps({5: cbor2.CBORTag(0, "2030-01-01T00:00:00Z")}))


def test_configuration_round_trip() -> None:
    config = TopicConfig(name="n", data="/ps/data/x", content_format=60, topic_type="t",
                         expiration=1_900_000_000, max_subscribers=3, observer_check=10,
                         initialize=b"\x80")
    assert for_creation(decode_properties(encode_config(config))) == config
    raw = read_item(encode_config(config))
    assert isinstance(raw, dict)
    assert raw[d.EXPIRATION_DATE] == Tagged(1, 1_900_000_000)
    assert list(raw) == sorted(raw)


def test_filter_matching() -> None:
    config = TopicConfig(name="n", data="/ps/data/x", topic_type="t")
    assert matches(config, {d.TOPIC_TYPE: "t", d.TOPIC_DATA: "ps/data/x"})
    assert not matches(config, {d.TOPIC_TYPE: "u"})
    assert not matches(config, {d.MAX_SUBSCRIBERS: 1})


def test_rate_limiter_buckets() -> None:
    limiter = PublishRateLimiter(rate=2.0, burst=3, max_entries=2)
    assert [limiter.take("a", 0.0) for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.take("a", 0.5) == 0  # one token back after half a second
    assert limiter.take("b", 0.5) == 0 and limiter.take("c", 0.5) == 0
    assert len(limiter) == 2  # "a" went first
    assert PublishRateLimiter(0.0, 1, 1).take("x", 0.0) == 0  # rate 0: off


def test_node_table_is_bounded() -> None:
    nodes = NodeTable(max_nodes=2)
    nodes.published("10.0.0.1", "t1", 1.0)
    nodes.seen("10.0.0.2", 2.0)
    nodes.seen("10.0.0.1", 3.0)
    nodes.seen("10.0.0.3", 4.0)
    assert [n.address for n in nodes] == ["10.0.0.1", "10.0.0.3"]
    first = nodes.get("10.0.0.1")
    assert first is not None and first.publishes == 1 and first.last_seen == 3.0


def test_address_key_groups_an_ipv6_64() -> None:
    assert address_key(("2001:db8::1", 5683, 0, 0)) == address_key(("2001:db8::ffff", 1))
    assert address_key(("::ffff:10.0.0.1", 1, 0, 0)) == "10.0.0.1"
    assert address_key(("10.0.0.1", 1)) != address_key(("10.0.0.2", 1))


def test_table_limits_per_creator() -> None:
    table = TopicTable(BrokerLimits(max_topics_per_address=2))
    for name in ("a", "b"):
        table.create(TopicConfig(name=name), "10.0.0.1", 0.0)
    with pytest.raises(Exception, match="at most 2 topics per address"):
        table.create(TopicConfig(name="c"), "10.0.0.1", 0.0)
    table.create(TopicConfig(name="c"), "10.0.0.2", 0.0)
    topic = table.by_name["a"]
    table.remove(topic)
    table.create(TopicConfig(name="d"), "10.0.0.1", 0.0)


def test_max_subscribers_is_capped_to_the_brokers_own() -> None:
    table = TopicTable(BrokerLimits(max_subscribers_per_topic=10))
    topic = table.create(TopicConfig(name="a", max_subscribers=10**6), None, 0.0)
    assert topic.config.max_subscribers == 10
