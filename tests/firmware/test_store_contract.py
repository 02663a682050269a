"""What every firmware store does (memory, SQLite, Redis, Redis Cluster): campaigns and
jobs stored, replaced, loaded in order, removed; and, for SQLite and Redis, kept across a
reopen, with concurrent writes sharing commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.firmware.records import Campaign, CampaignLimits, Step, UpdateJob
from aiolwm2m.firmware.store import FirmwareStore, MemoryFirmwareStore
from aiolwm2m.firmware.store_redis import RedisFirmwareStore
from aiolwm2m.firmware.store_sqlite import SQLiteFirmwareStore


@pytest.fixture(params=["memory", "sqlite", "redis_standalone", "redis_cluster"],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path
                ) -> AsyncIterator[FirmwareStore]:
    s: FirmwareStore
    if request.param == "memory":
        s = MemoryFirmwareStore()
    elif request.param == "sqlite":
        s = await SQLiteFirmwareStore.open(tmp_path / "fw.sqlite3")
    else:
        s = await RedisFirmwareStore.open(request.getfixturevalue(request.param).url())
    yield s
    await s.close()


def campaign(cid: str = "c1", **changes: object) -> Campaign:
    c = Campaign(cid, "fleet 2.0", "a" * 64, {"filter": {"endpoint": "sim-*"}},
                 CampaignLimits(concurrency=5, per_minute=60, method="push"), created_at=1.0)
    return c.with_changes(**changes) if changes else c


def job(jid: str, cid: str = "c1", **changes: object) -> UpdateJob:
    j = UpdateJob(jid, cid, f"dev-{jid}", "a" * 64, created_at=2.0)
    return j.with_changes(**changes) if changes else j


async def test_campaigns_and_jobs_round_trip(store: FirmwareStore) -> None:
    c = campaign()
    await store.put_campaign(c)
    jobs = [job(f"c1-{i}") for i in range(3)]
    await store.put_jobs(jobs)
    later = jobs[1].with_step(5.0, "downloading", "Package URI coap://x/fw/t", state="downloading",
                              method="coap", token="t", progress=0.5, from_version="1.0")
    await store.put_jobs([later])
    done = c.with_changes(state="finished", finished_at=9.0, failure_baseline=(3, 1))
    await store.put_campaign(done)
    campaigns, loaded = await store.load()
    assert campaigns == [done]
    assert loaded == [jobs[0], later, jobs[2]]  # replaced in place, order kept
    assert loaded[1].steps == (Step(5.0, "downloading", "Package URI coap://x/fw/t"),)


async def test_remove_campaign_takes_its_jobs(store: FirmwareStore) -> None:
    await store.put_campaign(campaign("c1"))
    await store.put_campaign(campaign("c2"))
    await store.put_jobs([job("c1-0"), job("c2-0", "c2"), job("c1-1")])
    await store.remove_campaign("c1")
    campaigns, jobs = await store.load()
    assert [c.id for c in campaigns] == ["c2"] and [j.id for j in jobs] == ["c2-0"]


async def test_concurrent_writes_all_land(store: FirmwareStore) -> None:
    await store.put_campaign(campaign())
    await asyncio.gather(*(store.put_jobs([job(f"c1-{i}", progress=i / 100)])
                           for i in range(100)))
    _, jobs = await store.load()
    assert [j.progress for j in jobs] == [i / 100 for i in range(100)]


async def test_sqlite_keeps_everything_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "fw.sqlite3"
    store = await SQLiteFirmwareStore.open(path)
    await store.put_campaign(campaign())
    writes = [store.put_jobs([job(f"c1-{i}")]) for i in range(50)]
    await asyncio.gather(*writes)
    assert store.commits < 10  # 51 writes, a few transactions
    await store.close()
    reopened = await SQLiteFirmwareStore.open(path)
    try:
        campaigns, jobs = await reopened.load()
    finally:
        await reopened.close()
    assert campaigns == [campaign()] and len(jobs) == 50
    with pytest.raises(ValueError, match="synchronous must be"):
        await SQLiteFirmwareStore.open(path, synchronous="SOMETIMES")


@pytest.mark.parametrize("deployment", ["redis_standalone", "redis_cluster"])
async def test_redis_keeps_everything_across_a_reopen(request: pytest.FixtureRequest,
                                                      deployment: str) -> None:
    url = request.getfixturevalue(deployment).url()
    store = await RedisFirmwareStore.open(url)
    await store.put_campaign(campaign("c2"))
    await store.put_campaign(campaign())
    await asyncio.gather(*(store.put_jobs([job(f"c1-{i}")]) for i in range(50)))
    await store.put_jobs([job("c2-0", "c2")])
    commits = store._writer.commits
    assert commits < 10  # 52 writes, a few pipelines
    await store.close()
    reopened = await RedisFirmwareStore.open(url)
    try:
        campaigns, jobs = await reopened.load()
        # Replacing a record keeps its place; new ones go after the reloaded ones.
        await reopened.put_jobs([job("c1-0", progress=0.5), job("c1-50")])
        await reopened.put_campaign(campaign("c2", state="finished"))
        await reopened.remove_campaign("c1")
        after = await reopened.load()
    finally:
        await reopened.close()
    assert [c.id for c in campaigns] == ["c2", "c1"]
    assert [j.id for j in jobs] == [f"c1-{i}" for i in range(50)] + ["c2-0"]
    assert after == ([campaign("c2", state="finished")], [job("c2-0", "c2")])
