"""One contract, every bootstrap store implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiolwm2m.store.bootstrap_memory import MemoryBootstrapStores
from aiolwm2m.store.bootstrap_sqlite import SQLiteBootstrapStores
from aiolwm2m.store.bootstrap_store import (
    FAILED,
    FINISHED,
    REFUSED,
    RUNNING,
    BootstrapConfigRecord,
    BootstrapSessionRecord,
    BootstrapStores,
)
from aiolwm2m.store.redis_bootstrap import RedisBootstrapStores
from aiolwm2m.store.sqlite import SQLiteStores

Factory = Callable[[pytest.FixtureRequest, Path], Awaitable[BootstrapStores]]


async def memory(_: pytest.FixtureRequest, __: Path) -> BootstrapStores:
    return MemoryBootstrapStores()


async def sqlite(_: pytest.FixtureRequest, tmp: Path) -> BootstrapStores:
    return await SQLiteBootstrapStores.open(tmp / "aiolwm2m.sqlite3")


async def redis(request: pytest.FixtureRequest, _: Path) -> BootstrapStores:
    return await RedisBootstrapStores.open(request.getfixturevalue("redis_standalone").url())


async def redis_cluster(request: pytest.FixtureRequest, _: Path) -> BootstrapStores:
    return await RedisBootstrapStores.open(request.getfixturevalue("redis_cluster").url())


@pytest.fixture(params=[memory, sqlite, redis, redis_cluster],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[BootstrapStores]:
    s = await request.param(request, tmp_path)
    yield s
    await s.close()


CONFIG = {"security": [{"instance_id": 1, "server_uri": "coap://h", "short_server_id": 1}],
          "servers": [{"instance_id": 0, "short_server_id": 1}]}


async def test_configs(stores: BootstrapStores) -> None:
    c = stores.configs
    assert await c.put(BootstrapConfigRecord("b", CONFIG, 1.0)) is None
    assert await c.put(BootstrapConfigRecord("*", {"delete": ["/0"]}, 2.0)) is None
    old = await c.put(BootstrapConfigRecord("b", {"delete": []}, 3.0))
    assert old == BootstrapConfigRecord("b", CONFIG, 1.0)
    assert (await c.get("b")) == BootstrapConfigRecord("b", {"delete": []}, 3.0)
    assert [r.endpoint for r in await c.all()] == ["*", "b"]
    assert await c.remove("b") is not None
    assert await c.remove("b") is None
    assert await c.get("b") is None


async def test_sessions(stores: BootstrapStores) -> None:
    s = stores.sessions
    a = BootstrapSessionRecord("s1", "ep", "[::1]:5", started_at=10.0)
    b = BootstrapSessionRecord("s2", "other", "1.2.3.4:5", started_at=11.0,
                               server_initiated=True)
    c = BootstrapSessionRecord("s3", "ep", "[::1]:6", started_at=12.0)
    for record in (a, b, c):
        await s.save(record)
    assert await s.get("s2") == b
    done = a.with_changes(state=FINISHED, finished_at=13.0, requests=5)
    await s.save(done)
    assert await s.get("s1") == done
    assert [r.id for r in await s.for_endpoint("ep")] == ["s1", "s3"]
    assert [r.id for r in await s.recent(2)] == ["s3", "s2"]
    await s.save(b.with_changes(state=FAILED, finished_at=20.0, error="timeout"))
    assert await s.purge(before=15.0) == 1  # s1 only; s3 is still running
    assert await s.get("s1") is None
    assert (await s.get("s3")).state == RUNNING  # type: ignore[union-attr]
    assert (await s.get("s2")).error == "timeout"  # type: ignore[union-attr]


async def test_trim_keeps_the_newest_in_one_state(stores: BootstrapStores) -> None:
    s = stores.sessions
    for i in range(6):
        await s.save(BootstrapSessionRecord(f"r{i}", f"ep{i % 2}", "h:1", float(i),
                                            state=REFUSED, finished_at=float(i),
                                            error="NoSec", reason="bootstrap-nosec"))
    await s.save(BootstrapSessionRecord("done", "ep0", "h:1", 0.5, state=FINISHED,
                                        finished_at=1.0))
    assert await s.trim(REFUSED, 2) == 4
    assert [r.id for r in await s.recent()] == ["r5", "r4", "done"]
    assert (await s.get("r5")).reason == "bootstrap-nosec"  # type: ignore[union-attr]
    assert await s.trim(REFUSED, 2) == 0
    assert await s.trim(FINISHED, 0) == 1


async def test_sqlite_survives_reopen_next_to_the_server_tables(tmp_path: Path) -> None:
    db = tmp_path / "aiolwm2m.sqlite3"
    server_stores = await SQLiteStores.open(db)  # the LwM2M server's tables, same file
    s = await SQLiteBootstrapStores.open(db)
    await s.configs.put(BootstrapConfigRecord("ep", CONFIG, 1.0))
    await s.sessions.save(BootstrapSessionRecord("x", "ep", "h:1", 1.0))
    await s.sessions.save(BootstrapSessionRecord("y", "ep", "h:1", 2.0, state=FINISHED))
    await asyncio.gather(*(s.sessions.save(BootstrapSessionRecord(f"z{i}", "many", "h", 3.0))
                           for i in range(200)))
    await s.close()
    await server_stores.close()
    again = await SQLiteBootstrapStores.open(db)
    assert (await again.configs.get("ep")) == BootstrapConfigRecord("ep", CONFIG, 1.0)
    assert [r.id for r in await again.sessions.for_endpoint("ep")] == ["x", "y"]
    assert len(await again.sessions.for_endpoint("many")) == 200
    await again.sessions.save(BootstrapSessionRecord("w", "ep", "h:1", 4.0, state=REFUSED,
                                                     reason="bootstrap-wrong-identity"))
    assert [r.id for r in await again.sessions.recent(1)] == ["w"]
    await again.close()
    third = await SQLiteBootstrapStores.open(db)
    assert (await third.sessions.get("w")).reason == (  # type: ignore[union-attr]
        "bootstrap-wrong-identity")
    assert await third.sessions.trim(REFUSED, 0) == 1
    await third.close()
    fourth = await SQLiteBootstrapStores.open(db)
    assert await fourth.sessions.get("w") is None
    assert [r.id for r in await fourth.sessions.for_endpoint("ep")] == ["x", "y"]
    await fourth.close()
