"""What the Redis values store does beyond the contract: a sample recorded late with an old
time is gone from reads after retention (though behind newer ones in its stream), a device
with too many samples to read through is refused, and a device's keys share its slot."""

from __future__ import annotations

import pytest

from aiolwm2m.history.store import QueryTooBroad, Retention
from aiolwm2m.history.store_redis import RedisValueStore
from aiolwm2m.store.redis_keys import key_slot


@pytest.fixture(params=["redis_standalone", "redis_cluster"], ids=["redis", "redis-cluster"])
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(request.param).url()
    return value


async def test_a_late_old_sample_is_gone_after_retention(url: str) -> None:
    store = await RedisValueStore.open(url, retention=Retention(max_age=100))
    try:
        for i in range(600):  # more than retention reads from a stream's head at once
            store.record("dev", 150 + i / 100, "read", [("/3/0/9", "Integer", i)])
        store.record("dev", 10, "send", [("/3/0/7", "Integer", -1)])  # buffered, sent late
        store.record("dev", 160, "read", [("/3/0/9", "Integer", 600)])
        await store.prune(200)
        history = await store.history("dev")
        assert len(history) == 601 and min(s.time for s in history) == 150
        assert [(s.path, s.value) for s in await store.latest("dev")] == [("/3/0/9", 600)]
    finally:
        await store.close()


async def test_too_many_samples_to_read_through(url: str) -> None:
    store = await RedisValueStore.open(url)
    store.max_scan = 10
    try:
        for t in range(12):
            store.record("chatty", t, "observe", [("/3/0/9", "Integer", t)])
        with pytest.raises(QueryTooBroad, match="more than a history read goes through"):
            await store.history("chatty")
        assert [s.value for s in await store.latest("chatty")] == [11]
    finally:
        await store.close()


async def test_a_devices_keys_share_its_slot(url: str) -> None:
    store = await RedisValueStore.open(url)
    try:
        store.record("dev}x", 1, "read", [("/3/0/9", "Integer", 1)])
        await store.flush()
        stream, latest = store._keys_of("dev}x")
        assert key_slot(stream) == key_slot(latest)
        client = store._writer.client
        assert await client.xlen(stream) == 1 and await client.hlen(latest) == 1
        await store.forget("dev}x")
        assert await client.exists(stream, latest) == 0
    finally:
        await store.close()
