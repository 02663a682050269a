"""Device groups in the server's SQLite database, written through its writer process (the
table is created here, over a connection of its own, as the RD's is)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

from .group_store import DeviceGroup, GroupStore, MemoryGroupStore, group_from_dict, group_to_dict
from .interfaces import Stores
from .redis_records import redis_stores_of
from .sqlite import SQLiteStores
from .sqlite_writer import SQLiteWriter

log = logging.getLogger(__name__)

GROUP_SCHEMA = """CREATE TABLE IF NOT EXISTS device_groups (
    name TEXT PRIMARY KEY, data TEXT NOT NULL)"""
UPSERT_GROUP = "INSERT OR REPLACE INTO device_groups VALUES (?,?)"
DELETE_GROUP = "DELETE FROM device_groups WHERE name=?"


class SQLiteGroupStore(MemoryGroupStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    @classmethod
    async def open(cls, writer: SQLiteWriter) -> SQLiteGroupStore:
        store = cls(writer)
        rows = await asyncio.get_running_loop().run_in_executor(None, _prepare, writer.path)
        for name, data in rows:
            try:
                group = group_from_dict(json.loads(data))
            except ValueError as e:
                log.warning("skipped the unreadable device group %r: %s", name, e)
                continue
            store._groups[group.name] = group
        return store

    async def put(self, group: DeviceGroup) -> None:
        text = json.dumps(group_to_dict(group), separators=(",", ":"))
        await self._writer.submit([(UPSERT_GROUP, (group.name, text))])
        await super().put(group)

    async def remove(self, name: str) -> DeviceGroup | None:
        if self.get(name) is None:
            return None
        await self._writer.submit([(DELETE_GROUP, (name,))])
        return await super().remove(name)


def _prepare(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute(GROUP_SCHEMA)
        conn.commit()
        rows: list[tuple[str, str]] = conn.execute(
            "SELECT name, data FROM device_groups").fetchall()
        return rows
    finally:
        conn.close()


async def open_group_store(stores: Stores) -> GroupStore:
    """The group store that goes with the server's stores: their SQLite file, their
    Redis, or memory."""
    if isinstance(stores, SQLiteStores):
        return await SQLiteGroupStore.open(stores.writer)
    redis = redis_stores_of(stores)
    if redis is not None:
        from .redis_groups import RedisGroupStore

        return await RedisGroupStore.open(redis.writer, redis.keys)
    return MemoryGroupStore()
