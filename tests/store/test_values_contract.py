"""One contract, every values store (``aiolwm2m/history``): latest values, history queries,
retention by age and by size, forgetting a device (memory, SQLite, Redis, Redis Cluster);
SQLite and Redis across a restart."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiolwm2m.gateway.names import EndDeviceName
from aiolwm2m.history.memory import MemoryValueStore
from aiolwm2m.history.samples import ValueSample
from aiolwm2m.history.sqlite import SQLiteValueStore
from aiolwm2m.history.store import MAX_QUERY_SAMPLES, Retention, ValueStore
from aiolwm2m.history.store_redis import RedisValueStore
from tests.redis_servers import RedisDeployment

Factory = Callable[[Path, Retention], Awaitable[ValueStore]]


async def memory(_: Path, retention: Retention) -> ValueStore:
    return MemoryValueStore(retention)


async def sqlite(tmp: Path, retention: Retention) -> ValueStore:
    return await SQLiteValueStore.open(tmp, retention=retention)


def redis_factory(deployment: RedisDeployment) -> Factory:
    url = deployment.url()  # one namespace per test

    async def open_redis(_: Path, retention: Retention) -> ValueStore:
        return await RedisValueStore.open(url, retention=retention)

    return open_redis


@pytest.fixture(params=[memory, sqlite, "redis_standalone", "redis_cluster"],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
def factory(request: pytest.FixtureRequest) -> Factory:
    if isinstance(request.param, str):
        return redis_factory(request.getfixturevalue(request.param))
    f: Factory = request.param
    return f


@pytest.fixture
async def store(factory: Factory, tmp_path: Path) -> AsyncIterator[ValueStore]:
    s = await factory(tmp_path, Retention())
    yield s
    await s.close()


def sample(path: str, at: float, value: object = 1, ep: str = "dev-1", rtype: str = "Integer",
           source: str = "read") -> ValueSample:
    return ValueSample(ep, path, at, rtype, value, source)  # type: ignore[arg-type]


def record(store: ValueStore, samples: list[ValueSample]) -> None:
    """Each sample as its own batch (what the store is given: one response's values)."""
    for s in samples:
        store.record(s.endpoint, s.time, s.source, [(s.path, s.type, s.value)])


def plain(samples: list[ValueSample]) -> list[tuple[str, float, object]]:
    return [(s.path, s.time, s.value) for s in samples]


async def test_latest_is_the_newest_of_each_path(store: ValueStore) -> None:
    record(store, [sample("/3/0/9", 10, 80), sample("/3/0/9", 20, 75), sample("/3/0/1", 15, 5)])
    # A Send with an older timestamp arriving later does not replace a newer value.
    record(store, [sample("/3/0/9", 12, 99, source="send")])
    latest = await store.latest("dev-1")
    assert plain(latest) == [("/3/0/1", 15, 5), ("/3/0/9", 20, 75)]
    assert [s.source for s in latest] == ["read", "read"]
    # Same time: the one recorded last wins.
    record(store, [sample("/3/0/1", 15, 6)])
    assert plain(await store.latest("dev-1", "/3/0/1")) == [("/3/0/1", 15, 6)]
    assert await store.latest("nobody") == []


async def test_values_keep_their_types(store: ValueStore) -> None:
    values = [("/1/0/6", "Boolean", True), ("/1/0/7", "String", "UQ"), ("/3303/0/5700",
              "Float", 21.5), ("/3/0/13", "Time", 1_700_000_000), ("/19/0/0/0", "Opaque",
              b"\x00\xffAB"), ("/3/0/9", "Integer", -3), ("/4/0/5", "Objlnk", "3:0"),
              ("/1/0/5", "Boolean", False), ("/10/0/1", "Unsigned Integer", 2**64 - 1)]
    record(store, [sample(p, 1, v, rtype=t) for p, t, v in values])
    await store.flush()
    got = {s.path: (s.type, s.value) for s in await store.latest("dev-1")}
    assert got == {p: (t, v) for p, t, v in values}
    assert type(got["/1/0/6"][1]) is bool and type(got["/3/0/9"][1]) is int
    assert type(got["/10/0/1"][1]) is int
    assert store.stats.dropped == 0
    history = await store.history("dev-1", "/1/0/6")
    assert history[0].value is True
    got = {s.path: (s.type, s.value) for s in await store.history("dev-1")}
    assert got == {p: (t, v) for p, t, v in values}


async def test_floats_that_are_not_finite(store: ValueStore) -> None:
    # A device may report them (TLV and CBOR carry any double).
    store.record("dev-1", 1, "read", [("/3303/0/5700", "Float", math.nan),
                                      ("/3303/0/5701", "Float", math.inf),
                                      ("/3303/0/5702", "Float", -math.inf)])
    for written in (False, True):
        if written:
            await store.flush()
        for got in (await store.latest("dev-1"), await store.history("dev-1")):
            assert [s.path for s in got] == ["/3303/0/5700", "/3303/0/5701", "/3303/0/5702"]
            assert math.isnan(got[0].value)  # type: ignore[arg-type]
            assert got[1].value == math.inf and got[2].value == -math.inf


async def test_values_recorded_together(store: ValueStore) -> None:
    """One response's values, given in one call: picked out by path, cut by the limit."""
    store.record("dev-1", 5, "read", [
        ("/3/0/0", "String", "/3/0/13"), ("/3/0/9", "Integer", 80), ("/3/0/10", "Integer", 1),
        ("/3/0/11/0", "Integer", 2), ("/3/0/11/1", "Integer", 3)])
    store.record("dev-1", 6, "read", [("/3/0/9", "Integer", 81), ("/3/0/13", "Time", 100)])
    for written in (False, True):
        if written:
            await store.flush()
        # A string value that reads like a path is a value, not that path.
        assert plain(await store.history("dev-1", "/3/0/13")) == [("/3/0/13", 6, 100)]
        assert plain(await store.history("dev-1", "/3/0/1")) == []
        assert plain(await store.history("dev-1", "/3/0/11")) == [("/3/0/11/0", 5, 2),
                                                                  ("/3/0/11/1", 5, 3)]
        assert plain(await store.history("dev-1", "/3/0", limit=3)) == [
            ("/3/0/11/1", 5, 3), ("/3/0/9", 6, 81), ("/3/0/13", 6, 100)]
        assert len(await store.history("dev-1")) == 7
        assert plain(await store.latest("dev-1", "/3/0/9")) == [("/3/0/9", 6, 81)]


async def test_history_by_prefix_and_time(store: ValueStore) -> None:
    record(store, [sample("/3/0/1", 1), sample("/3/0/10", 2), sample("/3/01/1", 3),
                  sample("/3/0", 4), sample("/3/0/1/0", 5), sample("/30/0/1", 6),
                  sample("/3/0/1", 7, ep="dev-2")])
    assert [s.time for s in await store.history("dev-1", "/3/0/1")] == [1, 5]
    assert [s.time for s in await store.history("dev-1", "/3/0")] == [1, 2, 4, 5]
    assert [s.time for s in await store.history("dev-1", "/3")] == [1, 2, 3, 4, 5]
    assert [s.time for s in await store.history("dev-1")] == [1, 2, 3, 4, 5, 6]
    assert [s.time for s in await store.history("dev-1", "/")] == [1, 2, 3, 4, 5, 6]
    assert [s.time for s in await store.history("dev-1", since=2, until=4)] == [2, 3, 4]
    assert [s.time for s in await store.history("dev-2")] == [7]


async def test_history_limit_keeps_the_newest_oldest_first(store: ValueStore) -> None:
    record(store, [sample("/3303/0/5700", t, float(t)) for t in (5, 1, 4, 2, 3)])
    record(store, [sample("/3303/0/5700", 3, 33.0)])  # a tie: recorded later, listed later
    got = await store.history("dev-1", "/3303/0/5700", limit=3)
    assert plain(got) == [("/3303/0/5700", 3, 33.0), ("/3303/0/5700", 4, 4.0),
                          ("/3303/0/5700", 5, 5.0)]
    assert len(await store.history("dev-1", limit=0)) == 0
    assert len(await store.history("dev-1", limit=MAX_QUERY_SAMPLES * 10)) == 6


async def test_reads_see_values_not_yet_written(store: ValueStore) -> None:
    record(store, [sample("/3/0/9", 1, 50)])
    assert plain(await store.latest("dev-1")) == [("/3/0/9", 1, 50)]
    assert plain(await store.history("dev-1")) == [("/3/0/9", 1, 50)]
    await store.flush()  # written now: still seen once
    assert plain(await store.history("dev-1")) == [("/3/0/9", 1, 50)]
    record(store, [sample("/3/0/9", 2, 51)])
    assert plain(await store.history("dev-1")) == [("/3/0/9", 1, 50), ("/3/0/9", 2, 51)]
    assert plain(await store.latest("dev-1")) == [("/3/0/9", 2, 51)]


async def test_retention_by_age(factory: Factory, tmp_path: Path) -> None:
    store = await factory(tmp_path, Retention(max_age=100))
    try:
        record(store, [sample("/3/0/9", 10, 1), sample("/3/0/9", 150, 2), sample("/3/0/1", 20)])
        await store.prune(200)
        assert plain(await store.history("dev-1")) == [("/3/0/9", 150, 2)]
        # The latest value of a resource last seen too long ago goes too.
        assert plain(await store.latest("dev-1")) == [("/3/0/9", 150, 2)]
    finally:
        await store.close()


async def test_retention_by_size(factory: Factory, tmp_path: Path) -> None:
    store = await factory(tmp_path, Retention(max_samples=5))
    try:
        for i in range(8):
            record(store, [sample(f"/3/0/{i}", 100 - i, i)])
        await store.flush()
        await store.prune(100)
        # The earliest recorded go first (whatever their times).
        assert sorted(s.value for s in await store.history("dev-1")) == [3, 4, 5, 6, 7]
        assert len(await store.latest("dev-1")) <= 5
    finally:
        await store.close()


async def test_forget(store: ValueStore) -> None:
    record(store, [sample("/3/0/9", 1), sample("/3/0/9", 2, ep="dev-2")])
    await store.flush()
    record(store, [sample("/3/0/1", 3)])
    await store.forget("dev-1")
    assert await store.history("dev-1") == [] and await store.latest("dev-1") == []
    assert len(await store.history("dev-2")) == 1
    record(store, [sample("/3/0/9", 4)])
    assert plain(await store.latest("dev-1")) == [("/3/0/9", 4, 1)]


async def test_sqlite_keeps_values_across_a_restart(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path)
    record(store, [sample("/3/0/9", 1, 50), sample("/3/0/9", 2, 51)])
    await store.close()  # writes what is pending
    store = await SQLiteValueStore.open(tmp_path)
    try:
        assert plain(await store.latest("dev-1")) == [("/3/0/9", 2, 51)]
        record(store, [sample("/3/0/9", 2, 52)])  # same time, recorded after the restart
        assert plain(await store.history("dev-1")) == [
            ("/3/0/9", 1, 50), ("/3/0/9", 2, 51), ("/3/0/9", 2, 52)]
        await store.flush()
        assert plain(await store.latest("dev-1")) == [("/3/0/9", 2, 52)]
    finally:
        await store.close()


async def test_end_device_and_a_device_named_like_it_are_kept_apart(store: ValueStore) -> None:
    # An ordinary device may register the endpoint name "gw-1/dev1"; the end device dev1
    # behind gateway gw-1 has the same text as its name, and neither sees the other's values.
    end_device = EndDeviceName("gw-1", "dev1")
    store.record(end_device, 10, "read", [("/3303/0/5700", "Float", 21.5)])
    store.record("gw-1/dev1", 11, "send", [("/3303/0/5700", "Float", 99.0)])
    store.record("gw-1\\/dev1", 12, "send", [("/3303/0/5700", "Float", 42.0)])
    await store.flush()
    assert plain(await store.latest(EndDeviceName("gw-1", "dev1"))) == [
        ("/3303/0/5700", 10, 21.5)]
    assert plain(await store.history("gw-1/dev1")) == [("/3303/0/5700", 11, 99.0)]
    assert plain(await store.history("gw-1\\/dev1")) == [("/3303/0/5700", 12, 42.0)]
    await store.forget("gw-1/dev1")
    await store.flush()
    assert plain(await store.history(end_device)) == [("/3303/0/5700", 10, 21.5)]
    assert await store.latest("gw-1/dev1") == []


@pytest.mark.parametrize("deployment", ["redis_standalone", "redis_cluster"])
async def test_redis_keeps_values_across_a_restart(request: pytest.FixtureRequest,
                                                   deployment: str) -> None:
    url = request.getfixturevalue(deployment).url()
    store = await RedisValueStore.open(url)
    record(store, [sample("/3/0/9", 1, 50), sample("/3/0/9", 2, 51),
                   sample("/3/0/1", 3, b"\x00", rtype="Opaque", ep="dev/2")])
    await store.close()  # writes what is pending
    store = await RedisValueStore.open(url, retention=Retention(max_samples=3))
    try:
        assert plain(await store.latest("dev-1")) == [("/3/0/9", 2, 51)]
        record(store, [sample("/3/0/9", 2, 52)])  # same time, recorded after the restart
        assert plain(await store.history("dev-1")) == [
            ("/3/0/9", 1, 50), ("/3/0/9", 2, 51), ("/3/0/9", 2, 52)]
        assert plain(await store.latest("dev-1")) == [("/3/0/9", 2, 52)]
        assert plain(await store.history("dev/2")) == [("/3/0/1", 3, b"\x00")]
        # Sequences went on from the stored ones: the earliest recorded still go first.
        await store.prune(10)
        assert plain(await store.history("dev-1")) == [("/3/0/9", 2, 51), ("/3/0/9", 2, 52)]
    finally:
        await store.close()
