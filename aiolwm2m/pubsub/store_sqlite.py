"""The broker's topics in a SQLite file, written from one worker thread.

One thread owns the connection, so writes apply in the order they were asked for and the
event loop never waits on the disk; the loop awaits configuration writes and lets value
flushes run behind (see :mod:`aiolwm2m.pubsub.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .store import StoredTopic
from .values_behind import Value, ValuesBehind

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pubsub_topics (
    id TEXT PRIMARY KEY,
    data_id TEXT NOT NULL,
    config BLOB NOT NULL,
    created_at REAL NOT NULL,
    creator TEXT,
    value BLOB,
    value_format INTEGER,
    published_at REAL
)
"""


class SQLiteTopicStore:
    def __init__(self, path: Path, *, flush_interval: float = 1.0) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-store")
        self._db: sqlite3.Connection | None = None
        self._values = ValuesBehind(self._write_values, flush_interval, "SQLite")

    @classmethod
    async def open(cls, path: Path, *, flush_interval: float = 1.0) -> SQLiteTopicStore:
        store = cls(path, flush_interval=flush_interval)
        await store._run(store._open)
        return store

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        self._db = db

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None, "store is closed"
        return self._db

    # -- reads and configuration writes -----------------------------------------------------

    async def load(self) -> list[StoredTopic]:
        rows: list[tuple[Any, ...]] = await self._run(self._load)
        return [StoredTopic(*row) for row in rows]

    def _load(self) -> list[tuple[Any, ...]]:
        cur = self._conn().execute(
            "SELECT id, data_id, config, created_at, creator, value, value_format, "
            "published_at FROM pubsub_topics ORDER BY created_at, id")
        return list(cur)

    async def save_topic(self, topic: StoredTopic) -> None:
        # The row carries the value as it is now; an older unwritten one must not follow it.
        self._values.discard(topic.id)
        row = (topic.id, topic.data_id, topic.config, topic.created_at, topic.creator,
               topic.value, topic.value_format, topic.published_at)
        await self._run(self._save, row)

    def _save(self, row: tuple[Any, ...]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO pubsub_topics (id, data_id, config, created_at, creator,"
            " value, value_format, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    async def delete_topic(self, topic_id: str) -> None:
        self._values.discard(topic_id)
        await self._run(self._delete, topic_id)

    def _delete(self, topic_id: str) -> None:
        self._conn().execute("DELETE FROM pubsub_topics WHERE id = ?", (topic_id,))

    # -- values, written behind -------------------------------------------------------------

    def set_value(self, topic_id: str, value: bytes | None, value_format: int | None,
                  at: float | None) -> None:
        self._values.set(topic_id, (value, value_format, at))

    async def _write_values(self, batch: dict[str, Value]) -> None:
        await self._run(self._update_values, [(v, f, at, tid)
                                              for tid, (v, f, at) in batch.items()])

    async def flush(self) -> None:
        await self._values.flush()

    def _update_values(self, batch: list[tuple[Any, ...]]) -> None:
        db = self._conn()
        db.execute("BEGIN")
        try:
            db.executemany("UPDATE pubsub_topics SET value = ?, value_format = ?, "
                           "published_at = ? WHERE id = ?", batch)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def close(self) -> None:
        if self._values.closed:
            return
        try:
            await self._values.close()
        finally:
            with contextlib.suppress(Exception):
                await self._run(self._close)
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

