"""The broker's topics in a SQLite file, written from one worker thread.

One thread owns the connection, so writes apply in the order they were asked for and the
event loop never waits on the disk; the loop awaits configuration writes and lets value
flushes run behind (see :mod:`aiolwm2m.pubsub.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .store import StoredTopic

log = logging.getLogger(__name__)
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
        self.flush_interval = flush_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-store")
        self._db: sqlite3.Connection | None = None
        # topic id -> (value, format, published_at): the newest unwritten value of each.
        self._dirty: dict[str, tuple[bytes | None, int | None, float | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self._closed = False

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
        self._dirty.pop(topic.id, None)
        row = (topic.id, topic.data_id, topic.config, topic.created_at, topic.creator,
               topic.value, topic.value_format, topic.published_at)
        await self._run(self._save, row)

    def _save(self, row: tuple[Any, ...]) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO pubsub_topics (id, data_id, config, created_at, creator,"
            " value, value_format, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    async def delete_topic(self, topic_id: str) -> None:
        self._dirty.pop(topic_id, None)
        await self._run(self._delete, topic_id)

    def _delete(self, topic_id: str) -> None:
        self._conn().execute("DELETE FROM pubsub_topics WHERE id = ?", (topic_id,))

    # -- values, written behind -------------------------------------------------------------

    def set_value(self, topic_id: str, value: bytes | None, value_format: int | None,
                  at: float | None) -> None:
        if self._closed:
            return
        self._dirty[topic_id] = (value, value_format, at)
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_interval, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.flush())
        task.add_done_callback(_log_failure)

    async def flush(self) -> None:
        # One flush at a time: a second waits for the first, then writes what came since.
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
        if not self._dirty:
            return
        batch = [(v, f, at, tid) for tid, (v, f, at) in self._dirty.items()]
        self._dirty = {}
        self._flushing = asyncio.get_running_loop().create_future()
        try:
            await self._run(self._write_values, batch)
        except BaseException:
            # Keep what failed for the next flush, unless a newer value replaced it.
            for v, f, at, tid in batch:
                self._dirty.setdefault(tid, (v, f, at))
            raise
        finally:
            done, self._flushing = self._flushing, None
            done.set_result(None)

    def _write_values(self, batch: list[tuple[Any, ...]]) -> None:
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
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.flush()
        finally:
            self._closed = True
            with contextlib.suppress(Exception):
                await self._run(self._close)
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("writing published values failed: %s", task.exception())
