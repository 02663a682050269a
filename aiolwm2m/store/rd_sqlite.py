"""The Resource Directory's registrations in the server's SQLite database.

They share the database file and the group-committing writer process of the other stores
(:mod:`aiolwm2m.store.sqlite_writer`): an RD Register is one more row in the same batches
as the LwM2M ones, durable before its 2.01 leaves. The table is created here, over a
connection of its own, so that the writer's schema (and the other stores) need not know
about the RD; a writer restarted later finds the table in the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path

from .interfaces import Commit, Stores
from .rd_records import RdRegistration, rd_registration_from_row, rd_registration_row
from .rd_store import MemoryRdStore, RdStore
from .redis_records import redis_stores_of
from .sqlite import SQLiteStores
from .sqlite_writer import SQLiteWriter, json_last

log = logging.getLogger(__name__)

RD_SCHEMA = """CREATE TABLE IF NOT EXISTS rd_registrations (
    id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, sector TEXT NOT NULL, data TEXT NOT NULL)"""
UPSERT_RD = json_last("INSERT OR REPLACE INTO rd_registrations VALUES (?,?,?,?)")
DELETE_RD = "DELETE FROM rd_registrations WHERE id=?"


class SQLiteRdStore(MemoryRdStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    @classmethod
    async def open(cls, writer: SQLiteWriter) -> SQLiteRdStore:
        store = cls(writer)
        rows = await asyncio.get_running_loop().run_in_executor(None, _prepare, writer.path)
        for (data,) in rows:
            try:
                reg = rd_registration_from_row(json.loads(data))
            except (ValueError, TypeError) as e:
                log.warning("skipped an unreadable RD registration row: %s", e)
                continue
            store._put(reg)
        return store

    def put_nowait(self, registration: RdRegistration) -> Commit:
        self._put(registration)
        return self._writer.submit([(UPSERT_RD, (
            registration.id, registration.endpoint, registration.sector or "",
            rd_registration_row(registration)))])

    def remove_nowait(self, registration_id: str) -> tuple[RdRegistration | None, Commit]:
        reg = self._remove(registration_id)
        if reg is None:
            return None, None
        return reg, self._writer.submit([(DELETE_RD, (registration_id,))])


def _prepare(path: Path) -> list[tuple[str]]:
    """Create the table if needed and read every row (off the event loop)."""
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute(RD_SCHEMA)
        conn.commit()
        rows: list[tuple[str]] = conn.execute("SELECT data FROM rd_registrations").fetchall()
        return rows
    finally:
        conn.close()


async def open_rd_store(stores: Stores) -> RdStore:
    """The RD store that goes with the server's stores: in their SQLite file, in their
    Redis, or in memory."""
    if isinstance(stores, SQLiteStores):
        return await SQLiteRdStore.open(stores.writer)
    redis = redis_stores_of(stores)
    if redis is not None:
        from .redis_rd import RedisRdStore

        return await RedisRdStore.open(redis.writer, redis.keys)
    return MemoryRdStore()
