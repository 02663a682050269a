"""The Redis stores of groups, the RD policy and RD registrations while Redis is away: a
write Redis did not acknowledge fails, memory keeps what it had, and once Redis is back it
holds what memory holds (the write that may still land is followed by its undo)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiolwm2m.store.group_sqlite import open_group_store
from aiolwm2m.store.group_store import DeviceGroup
from aiolwm2m.store.rd_policy_store import open_rd_policy_store
from aiolwm2m.store.rd_sqlite import open_rd_store
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.redis_writer import RedisWriteFailed
from aiolwm2m.store.sqlite_writer import WRITER_OK
from tests.redis_servers import RedisProcess
from tests.store.test_rd_contract import reg


async def until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_writes_during_an_outage_converge(private_redis: RedisProcess) -> None:
    url = private_redis.url + "?namespace=records"
    s = await RedisStores.open(url, restart_delay_min=0.05, restart_delay_max=0.2,
                               hold_timeout=0.3)
    try:
        groups = await open_group_store(s)
        policy = await open_rd_policy_store(s)
        rd = await open_rd_store(s)
        await groups.put(DeviceGroup("kept", members=("a",)))
        await policy.put({"anonymous_lookup": False}, 1.0)
        await rd.put(reg("a", "ep1", 1))
        private_redis.kill()
        with pytest.raises(RedisWriteFailed):
            await groups.put(DeviceGroup("new"))
        with pytest.raises(RedisWriteFailed):
            await groups.remove("kept")
        with pytest.raises(RedisWriteFailed):
            await policy.clear()
        # Memory did not take them.
        assert [g.name for g in groups.all()] == ["kept"]
        assert policy.get() == ({"anonymous_lookup": False}, 1.0)
        # An RD write the caller takes back (what the RD does when its commit fails).
        commit = rd.put_nowait(reg("b", "ep2", 2))
        assert commit is not None
        with pytest.raises(RedisWriteFailed):
            await commit
        await asyncio.gather(rd.remove("b"), return_exceptions=True)
        private_redis.start()  # same port, same AOF
        await until(lambda: s.writer.state == WRITER_OK)
        await groups.put(DeviceGroup("after"))
    finally:
        await s.close()
    again = await RedisStores.open(url)
    try:
        assert [g.name for g in (await open_group_store(again)).all()] == ["after", "kept"]
        assert (await open_rd_policy_store(again)).get() == ({"anonymous_lookup": False}, 1.0)
        assert [r.id for r in (await open_rd_store(again)).all()] == ["a"]
    finally:
        await again.close()
