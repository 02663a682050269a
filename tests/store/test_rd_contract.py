"""One contract for every RD store implementation (memory, SQLite, Redis, Redis Cluster)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiolwm2m.store.interfaces import Stores
from aiolwm2m.store.memory import MemoryStores
from aiolwm2m.store.rd_records import (
    RdLink,
    RdRegistration,
    rd_registration_from_row,
    rd_registration_row,
)
from aiolwm2m.store.rd_sqlite import SQLiteRdStore, open_rd_store
from aiolwm2m.store.rd_store import RdStore
from aiolwm2m.store.redis_keys import key_slot
from aiolwm2m.store.redis_rd import RedisRdStore
from aiolwm2m.store.redis_records import rd_expiry_key, rd_key
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.sqlite import SQLiteStores

Opened = tuple[Stores, RdStore]
Factory = Callable[[Path], Awaitable[Opened]]


async def memory(_: Path) -> Opened:
    stores = MemoryStores()
    return stores, await open_rd_store(stores)


async def sqlite(tmp: Path) -> Opened:
    stores = await SQLiteStores.open(tmp / "db.sqlite3")
    return stores, await open_rd_store(stores)


async def redis(request: pytest.FixtureRequest) -> Opened:
    stores = await RedisStores.open(request.getfixturevalue("redis_standalone").url())
    return stores, await open_rd_store(stores)


async def redis_cluster(request: pytest.FixtureRequest) -> Opened:
    stores = await RedisStores.open(request.getfixturevalue("redis_cluster").url())
    return stores, await open_rd_store(stores)


@pytest.fixture(params=[memory, sqlite, redis, redis_cluster],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def rd_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RdStore]:
    factory = request.param
    stores, store = await (factory(request) if factory in (redis, redis_cluster)
                           else factory(tmp_path))
    yield store
    await stores.close()


def reg(rid: str, ep: str, seq: int, **kw: object) -> RdRegistration:
    base: dict[str, object] = dict(
        id=rid, endpoint=ep, sector="plant", lifetime=90000, base="coap://[2001:db8::1]:5683",
        endpoint_types=("oic.d.sensor",), extra=(("site", "n"), ("flag", None)),
        links=(RdLink("/t", (("rt", "temperature"), ("obs", None))), RdLink("/h")),
        transport="udp", address=("2001:db8::1", 5683), identity=None, registered_at=10.0,
        updated_at=20.0, sequence=seq)
    base.update(kw)
    return RdRegistration(**base)  # type: ignore[arg-type]


def test_row_round_trip() -> None:
    r = reg("a", "ep1", 3, identity="psk:x", sector=None, base_explicit=True)
    assert rd_registration_from_row(rd_registration_row(r)) == r
    assert rd_registration_from_row(json.loads(json.dumps(rd_registration_row(r)))) == r
    with pytest.raises(ValueError):
        rd_registration_from_row([1, 2, 3])


async def test_put_get_remove(rd_store: RdStore) -> None:
    assert await rd_store.put(reg("b", "ep2", 2)) is None
    await rd_store.put(reg("a", "ep1", 1))
    assert rd_store.get("a") == reg("a", "ep1", 1)
    assert [r.id for r in rd_store.all()] == ["a", "b"]  # by sequence
    assert rd_store.count() == 2
    await rd_store.put(reg("a", "ep1", 1, lifetime=5))
    assert rd_store.get("a") == reg("a", "ep1", 1, lifetime=5)
    assert (await rd_store.remove("a")) == reg("a", "ep1", 1, lifetime=5)
    assert await rd_store.remove("a") is None
    assert rd_store.get("a") is None and rd_store.count() == 1


async def test_writes_without_waiting(rd_store: RdStore) -> None:
    commit = rd_store.put_nowait(reg("a", "ep1", 1))
    assert rd_store.get("a") == reg("a", "ep1", 1)  # visible before it is durable
    if commit is not None:
        await commit
    gone, commit = rd_store.remove_nowait("a")
    assert gone == reg("a", "ep1", 1) and rd_store.get("a") is None
    if commit is not None:
        await commit
    assert rd_store.remove_nowait("zz") == (None, None)


async def test_sqlite_is_durable_and_reloads(tmp_path: Path) -> None:
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    store = await open_rd_store(stores)
    assert isinstance(store, SQLiteRdStore)
    first = store.put_nowait(reg("a", "ep1", 1))
    second = store.put_nowait(reg("b", "ep2", 2, sector=None))
    assert first is not None and second is not None
    await first
    await second
    # On disk, through another connection, while the store is open.
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite3")) as conn:
        rows = conn.execute("SELECT id, endpoint, sector FROM rd_registrations ORDER BY id"
                            ).fetchall()
    assert rows == [("a", "ep1", "plant"), ("b", "ep2", "")]
    await store.remove("a")
    await stores.close()
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    try:
        again = await open_rd_store(stores)
        assert again.all() == [reg("b", "ep2", 2, sector=None)]
    finally:
        await stores.close()


@pytest.mark.parametrize("deployment", ["redis_standalone", "redis_cluster"])
async def test_redis_is_durable_and_reloads(request: pytest.FixtureRequest,
                                            deployment: str) -> None:
    url = request.getfixturevalue(deployment).url()
    stores = await RedisStores.open(url)
    try:
        store = await open_rd_store(stores)
        assert isinstance(store, RedisRdStore)
        first = store.put_nowait(reg("a", "ep1", 1))
        second = store.put_nowait(reg("b", "ep2", 2, sector=None, lifetime=60))
        assert first is not None and second is not None
        await first
        await second
        # In Redis once acknowledged: the row, and its expiry entry in its own slot's bucket.
        client = stores.writer.client
        row = rd_key(stores.keys, "b")
        bucket = rd_expiry_key(stores.keys, row)
        assert key_slot(row) == key_slot(bucket)
        assert await client.zscore(bucket, "b") == 80.0
        assert rd_registration_from_row(json.loads(await client.get(row))) == reg(
            "b", "ep2", 2, sector=None, lifetime=60)
        await store.remove("a")
        assert await client.exists(rd_key(stores.keys, "a")) == 0
        assert await client.zscore(rd_expiry_key(stores.keys, rd_key(stores.keys, "a")),
                                   "a") is None
    finally:
        await stores.close()
    stores = await RedisStores.open(url)
    try:
        again = await open_rd_store(stores)
        assert again.all() == [reg("b", "ep2", 2, sector=None, lifetime=60)]
    finally:
        await stores.close()
