"""Where the Resource Directory keeps its authorisation policy: one document (plain JSON
data, see ``aiolwm2m.rd.policy``), in memory or in the server's SQLite file.

The store knows nothing of what the document means: the RD checks it before it is put, and
again when it is read back (a document an older version wrote that no longer parses is
reported and the default policy used).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from .interfaces import Stores
from .redis_records import redis_stores_of
from .sqlite import SQLiteStores
from .sqlite_writer import SQLiteWriter

log = logging.getLogger(__name__)

POLICY_SCHEMA = """CREATE TABLE IF NOT EXISTS rd_policy (
    name TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL)"""
UPSERT_POLICY = "INSERT OR REPLACE INTO rd_policy VALUES (?,?,?)"
DELETE_POLICY = "DELETE FROM rd_policy WHERE name=?"
_NAME = "policy"


class RdPolicyStore(Protocol):
    def get(self) -> tuple[dict[str, Any], float] | None:
        """The stored document and when it was stored; None when none is."""

    async def put(self, document: dict[str, Any], updated_at: float) -> None:
        """Replace the document; durable when this returns."""

    async def clear(self) -> None:
        """Forget the document (the RD falls back to its default policy)."""


class MemoryRdPolicyStore:
    def __init__(self) -> None:
        self._document: tuple[dict[str, Any], float] | None = None

    def get(self) -> tuple[dict[str, Any], float] | None:
        if self._document is None:
            return None
        # A copy: callers must not change the stored document by changing what they got.
        return json.loads(json.dumps(self._document[0])), self._document[1]

    async def put(self, document: dict[str, Any], updated_at: float) -> None:
        self._document = (json.loads(json.dumps(document)), updated_at)

    async def clear(self) -> None:
        self._document = None


class SQLiteRdPolicyStore(MemoryRdPolicyStore):
    """The document in the server's database, written through its writer process."""

    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    @classmethod
    async def open(cls, writer: SQLiteWriter) -> SQLiteRdPolicyStore:
        store = cls(writer)
        row = await asyncio.get_running_loop().run_in_executor(None, _prepare, writer.path)
        if row is not None:
            try:
                document = json.loads(row[0])
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
                store._document = (document, float(row[1]))
            except (ValueError, TypeError) as e:
                log.warning("ignored an unreadable stored RD policy: %s", e)
        return store

    async def put(self, document: dict[str, Any], updated_at: float) -> None:
        text = json.dumps(document, separators=(",", ":"))
        await self._writer.submit([(UPSERT_POLICY, (_NAME, text, updated_at))])
        self._document = (json.loads(text), updated_at)

    async def clear(self) -> None:
        await self._writer.submit([(DELETE_POLICY, (_NAME,))])
        self._document = None


def _prepare(path: Path) -> tuple[str, float] | None:
    """Create the table if needed and read the document (off the event loop)."""
    conn = sqlite3.connect(path, timeout=10.0)
    try:
        conn.execute(POLICY_SCHEMA)
        conn.commit()
        row = conn.execute("SELECT data, updated_at FROM rd_policy WHERE name=?",
                           (_NAME,)).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))
    finally:
        conn.close()


async def open_rd_policy_store(stores: Stores) -> RdPolicyStore:
    """The policy store that goes with the server's stores: their SQLite file, their
    Redis, or memory."""
    if isinstance(stores, SQLiteStores):
        return await SQLiteRdPolicyStore.open(stores.writer)
    redis = redis_stores_of(stores)
    if redis is not None:
        from .redis_rd_policy import RedisRdPolicyStore

        return await RedisRdPolicyStore.open(redis.writer, redis.keys)
    return MemoryRdPolicyStore()
