"""One contract for every device group store (memory, SQLite, Redis, Redis Cluster)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.store.group_sqlite import open_group_store
from aiolwm2m.store.group_store import DeviceGroup, GroupStore, group_from_dict, group_to_dict
from aiolwm2m.store.interfaces import Stores
from aiolwm2m.store.memory import MemoryStores
from aiolwm2m.store.redis_groups import RedisGroupStore
from aiolwm2m.store.redis_records import group_key
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.sqlite import SQLiteStores


async def open_memory(_: Path) -> Stores:
    return MemoryStores()


async def open_sqlite(tmp: Path) -> Stores:
    return await SQLiteStores.open(tmp / "db.sqlite3")


@pytest.fixture(params=[open_memory, open_sqlite, "redis_standalone", "redis_cluster"],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GroupStore]:
    stores = (await RedisStores.open(request.getfixturevalue(request.param).url())
              if isinstance(request.param, str) else await request.param(tmp_path))
    yield await open_group_store(stores)
    await stores.close()


def group(name: str, **kw: object) -> DeviceGroup:
    base: dict[str, object] = dict(name=name, members=("a", "b"), filter=("ep=m-*", "d=x"),
                                   rd_group=("lights", None), description="d",
                                   created_at=1.0, updated_at=2.0)
    base.update(kw)
    return DeviceGroup(**base)  # type: ignore[arg-type]


def test_plain_form_round_trip() -> None:
    for g in (group("a"), group("b", rd_group=("x", "hall"), filter=(), members=())):
        assert group_from_dict(json.loads(json.dumps(group_to_dict(g)))) == g
    for bad in (None, [], {"members": []}, {"name": "x", "rd_group": {"d": "y"}}):
        with pytest.raises(ValueError):
            group_from_dict(bad)


async def test_put_get_all_remove(store: GroupStore) -> None:
    assert store.get("a") is None and store.all() == []
    await store.put(group("b"))
    await store.put(group("a"))
    assert [g.name for g in store.all()] == ["a", "b"]
    await store.put(group("a", members=("z",)))
    assert store.get("a") == group("a", members=("z",))
    assert await store.remove("a") == group("a", members=("z",))
    assert await store.remove("a") is None
    assert [g.name for g in store.all()] == ["b"]


async def test_sqlite_keeps_groups_across_a_restart(tmp_path: Path) -> None:
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    s = await open_group_store(stores)
    big = group("big", members=tuple(f"ep-{i}" for i in range(20_000)))
    await s.put(big)
    await s.put(group("small"))
    await s.remove("small")
    await stores.close()
    stores = await SQLiteStores.open(tmp_path / "db.sqlite3")
    try:
        s = await open_group_store(stores)
        assert s.all() == [big]
    finally:
        await stores.close()


@pytest.mark.parametrize("deployment", ["redis_standalone", "redis_cluster"])
async def test_redis_keeps_groups_across_a_reopen(request: pytest.FixtureRequest,
                                                  deployment: str) -> None:
    url = request.getfixturevalue(deployment).url()
    stores = await RedisStores.open(url)
    try:
        s = await open_group_store(stores)
        assert isinstance(s, RedisGroupStore)
        big = group("big", members=tuple(f"ep-{i}" for i in range(20_000)))
        await s.put(big)
        await s.put(group("small"))
        await s.put(group("odd}name*"))
        await s.remove("small")
        assert await stores.writer.client.exists(group_key(stores.keys, "small")) == 0
    finally:
        await stores.close()
    stores = await RedisStores.open(url)
    try:
        s = await open_group_store(stores)
        assert s.all() == [big, group("odd}name*")]
    finally:
        await stores.close()
