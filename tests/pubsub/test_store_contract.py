"""One contract, every topic store (memory, SQLite, Redis, Redis Cluster); then the
broker's topics and last values across a restart of a SQLite-backed broker, and of a
Redis-backed one."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.pubsub import drafts as d
from aiolwm2m.pubsub.store import MemoryTopicStore, StoredTopic, TopicStore
from aiolwm2m.pubsub.store_redis import RedisTopicStore
from aiolwm2m.pubsub.store_sqlite import SQLiteTopicStore

from .conftest import new_client, start_broker

Factory = Callable[[Path], Awaitable[TopicStore]]


async def memory(_: Path) -> TopicStore:
    return MemoryTopicStore()


async def sqlite(tmp: Path) -> TopicStore:
    return await SQLiteTopicStore.open(tmp / "pubsub.sqlite3", flush_interval=0.05)


@pytest.fixture(params=[memory, sqlite, "redis_standalone", "redis_cluster"],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TopicStore]:
    s = (await RedisTopicStore.open(request.getfixturevalue(request.param).url(),
                                    flush_interval=0.05)
         if isinstance(request.param, str) else await request.param(tmp_path))
    yield s
    await s.close()


def topic(tid: str, **kw: object) -> StoredTopic:
    base: dict[str, object] = dict(id=tid, data_id="d" + tid, config=b"\xa1\x00\x61x",
                                   created_at=100.0, creator="127.0.0.1")
    base.update(kw)
    return StoredTopic(**base)  # type: ignore[arg-type]


async def test_save_load_replace_delete(store: TopicStore) -> None:
    assert await store.load() == []
    await store.save_topic(topic("a"))
    await store.save_topic(topic("b", value=b"v", value_format=0, published_at=101.0))
    assert [t.id for t in await store.load()] == ["a", "b"]
    await store.save_topic(topic("a", config=b"\xa0"))
    loaded = {t.id: t for t in await store.load()}
    assert loaded["a"].config == b"\xa0" and loaded["b"].value == b"v"
    await store.delete_topic("a")
    await store.delete_topic("missing")
    assert [t.id for t in await store.load()] == ["b"]


async def test_values_written_behind_newest_wins(store: TopicStore) -> None:
    await store.save_topic(topic("a"))
    for i in range(5):
        store.set_value("a", str(i).encode(), 0, 200.0 + i)
    await store.flush()
    (loaded,) = await store.load()
    assert (loaded.value, loaded.value_format, loaded.published_at) == (b"4", 0, 204.0)
    store.set_value("a", None, None, None)  # topic-data deleted
    store.set_value("gone", b"x", 0, 1.0)  # a topic that no longer exists: ignored
    await store.flush()
    (loaded,) = await store.load()
    assert loaded.value is None


async def test_loaded_records_are_copies(store: TopicStore) -> None:
    await store.save_topic(topic("a", value=b"1"))
    (loaded,) = await store.load()
    loaded.value = b"changed"
    (again,) = await store.load()
    assert again.value == b"1"


async def test_sqlite_keeps_everything_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "pubsub.sqlite3"
    s = await SQLiteTopicStore.open(path, flush_interval=60.0)
    await s.save_topic(topic("a"))
    s.set_value("a", b"42", 60, 300.0)
    await s.close()  # the value is still only written behind: close writes it
    s = await SQLiteTopicStore.open(path)
    try:
        (loaded,) = await s.load()
        assert (loaded.value, loaded.value_format, loaded.creator) == (b"42", 60, "127.0.0.1")
    finally:
        await s.close()


async def test_sqlite_flushes_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "pubsub.sqlite3"
    s = await SQLiteTopicStore.open(path, flush_interval=0.05)
    try:
        await s.save_topic(topic("a"))
        s.set_value("a", b"7", 0, 1.0)
        for _ in range(100):
            with contextlib.closing(sqlite3.connect(path)) as db:
                row = db.execute("SELECT value FROM pubsub_topics WHERE id = 'a'").fetchone()
            if row[0] == b"7":
                break
            await asyncio.sleep(0.05)
        assert row[0] == b"7"
    finally:
        await s.close()


@pytest.mark.parametrize("kept", ["sqlite", "redis_standalone", "redis_cluster"])
async def test_broker_topics_and_last_values_survive_a_restart(
        request: pytest.FixtureRequest, tmp_path: Path, kept: str) -> None:
    store = kept if kept == "sqlite" else request.getfixturevalue(kept).url()
    broker = await start_broker(store=store, data_dir=tmp_path, flush_interval=60.0)
    if kept != "sqlite":
        assert isinstance(broker.store, RedisTopicStore)
    client = await new_client(broker)
    try:
        topic_path, data = await client.create_topic("kept", {d.TOPIC_CONTENT_FORMAT: 0,
                                                              d.MAX_SUBSCRIBERS: 4})
        _, empty = await client.create_topic("half")
        await client.publish(data, b"1")
        await client.publish(data, b"2")
    finally:
        await client.endpoint.close()
        await broker.stop()
    broker = await start_broker(store=store, data_dir=tmp_path)
    client = await new_client(broker)
    try:
        reply = await client.send(Code.GET, data)
        assert (reply.code, reply.payload, reply.content_format) == (Code.CONTENT, b"2", 0)
        assert (await client.send(Code.GET, empty)).code == Code.NOT_FOUND
        assert (await client.send(Code.GET, topic_path)).code == Code.CONTENT
        assert (await client.publish(data, b"3")).code == Code.CHANGED  # not a first
        kept = broker.topic_named("kept")
        assert kept is not None and kept.config.max_subscribers == 4
        reply = await client.create({d.TOPIC_NAME: "kept", d.RESOURCE_TYPE: d.RT_DATA})
        assert reply.payload == b"topic-name: already in use"
    finally:
        await client.endpoint.close()
        await broker.stop()


async def test_deleted_topics_stay_deleted(tmp_path: Path) -> None:
    broker = await start_broker(store="sqlite", data_dir=tmp_path)
    client = await new_client(broker)
    try:
        topic_path, data = await client.create_topic("t")
        await client.publish(data, b"1")
        assert (await client.send(Code.DELETE, topic_path)).code == Code.DELETED
    finally:
        await client.endpoint.close()
        await broker.stop()
    broker = await start_broker(store="sqlite", data_dir=tmp_path)
    try:
        assert broker.topics() == []
    finally:
        await broker.stop()
