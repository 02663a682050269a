"""One contract for every store of the RD's policy document (memory, SQLite, Redis,
Redis Cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.store.interfaces import Stores
from aiolwm2m.store.memory import MemoryStores
from aiolwm2m.store.rd_policy_store import RdPolicyStore, open_rd_policy_store
from aiolwm2m.store.redis_rd_policy import RedisRdPolicyStore
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.sqlite import SQLiteStores


async def open_memory(_: Path) -> Stores:
    return MemoryStores()


async def open_sqlite(tmp: Path) -> Stores:
    return await SQLiteStores.open(tmp / "db.sqlite3")


@pytest.fixture(params=[open_memory, open_sqlite, "redis_standalone", "redis_cluster"],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path
                ) -> AsyncIterator[RdPolicyStore]:
    stores = (await RedisStores.open(request.getfixturevalue(request.param).url())
              if isinstance(request.param, str) else await request.param(tmp_path))
    yield await open_rd_policy_store(stores)
    await stores.close()


DOC = {"anonymous_lookup": False, "identities": {"psk:gw": {"endpoints": ["m-*"]}}}


async def test_put_get_clear(store: RdPolicyStore) -> None:
    assert store.get() is None
    await store.put(DOC, 12.5)
    got = store.get()
    assert got == (DOC, 12.5)
    assert got is not None
    got[0]["identities"].clear()  # what a caller does to its copy stays with it
    assert store.get() == (DOC, 12.5)
    await store.put({"sector_lookup": True}, 13.0)
    assert store.get() == ({"sector_lookup": True}, 13.0)
    await store.clear()
    assert store.get() is None


async def test_sqlite_keeps_it_across_a_restart(tmp_path: Path) -> None:
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    await (await open_rd_policy_store(stores)).put(DOC, 1.0)
    await stores.close()
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    try:
        store = await open_rd_policy_store(stores)
        assert store.get() == (DOC, 1.0)
        await store.clear()
    finally:
        await stores.close()
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    try:
        assert (await open_rd_policy_store(stores)).get() is None
    finally:
        await stores.close()


@pytest.mark.parametrize("deployment", ["redis_standalone", "redis_cluster"])
async def test_redis_keeps_it_across_a_reopen(request: pytest.FixtureRequest,
                                              deployment: str) -> None:
    url = request.getfixturevalue(deployment).url()
    stores = await RedisStores.open(url)
    try:
        store = await open_rd_policy_store(stores)
        assert isinstance(store, RedisRdPolicyStore)
        await store.put(DOC, 1.0)
    finally:
        await stores.close()
    stores = await RedisStores.open(url)
    try:
        store = await open_rd_policy_store(stores)
        assert store.get() == (DOC, 1.0)
        await store.clear()
    finally:
        await stores.close()
    stores = await RedisStores.open(url)
    try:
        assert (await open_rd_policy_store(stores)).get() is None
    finally:
        await stores.close()
