"""Campaigns and update jobs in a SQLite file of their own, written with group commit.

A campaign over thousands of devices writes a job record at every step of every device, a
few per second per device at most but many at once; each write waits for the transaction
that carries it, and the writes that arrive while one transaction commits share the next.
SQLite runs on one thread of its own, off the event loop. The file is separate from the
registration database, whose writer process is tuned for the registration path.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .records import Campaign, UpdateJob

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL,
                                 data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_campaign ON jobs (campaign_id);
"""
_UPSERT_CAMPAIGN = ("INSERT INTO campaigns (id, data) VALUES (?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET data = excluded.data")
_UPSERT_JOB = ("INSERT INTO jobs (id, campaign_id, data) VALUES (?, ?, ?) "
               "ON CONFLICT(id) DO UPDATE SET data = excluded.data")
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

# One pending write: what to run and its parameters.
_Op = tuple[str, list[tuple[Any, ...]]]


class SQLiteFirmwareStore:
    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._db = connection
        self._executor = executor
        self._ops: list[_Op] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        #: Transactions committed (writes arriving together share one).
        self.commits = 0

    @classmethod
    async def open(cls, path: Path, *, synchronous: str = "FULL") -> SQLiteFirmwareStore:
        if synchronous.upper() not in ("FULL", "NORMAL", "OFF", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL, EXTRA or OFF, not "
                             f"{synchronous!r}")
        executor = ThreadPoolExecutor(1, thread_name_prefix="firmware-store")

        def connect() -> sqlite3.Connection:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            db.executescript(_SCHEMA)
            return db

        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load(self) -> tuple[list[Campaign], list[UpdateJob]]:
        def read() -> tuple[list[str], list[str]]:
            campaigns = [r[0] for r in self._db.execute(
                "SELECT data FROM campaigns ORDER BY rowid")]
            jobs = [r[0] for r in self._db.execute("SELECT data FROM jobs ORDER BY rowid")]
            return campaigns, jobs

        campaigns, jobs = await self._run(read)
        return ([Campaign.from_dict(json.loads(c)) for c in campaigns],
                [UpdateJob.from_dict(json.loads(j)) for j in jobs])

    def put_campaign(self, campaign: Campaign) -> asyncio.Future[None]:
        return self._write((_UPSERT_CAMPAIGN, [(campaign.id, _ENCODE(campaign.to_dict()))]))

    def put_jobs(self, jobs: Sequence[UpdateJob]) -> asyncio.Future[None]:
        return self._write((_UPSERT_JOB, [(j.id, j.campaign_id, _ENCODE(j.to_dict()))
                                          for j in jobs]))

    async def remove_campaign(self, campaign_id: str) -> None:
        self._write(("DELETE FROM jobs WHERE campaign_id = ?", [(campaign_id,)]))
        await self._write(("DELETE FROM campaigns WHERE id = ?", [(campaign_id,)]))

    def _write(self, op: _Op) -> asyncio.Future[None]:
        if self._closed:
            raise RuntimeError("the firmware store is closed")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ops.append(op)
        self._waiters.append(fut)
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())
        return fut

    async def _flush(self) -> None:
        try:
            while self._ops:
                ops, waiters = self._ops, self._waiters
                self._ops, self._waiters = [], []
                try:
                    await self._run(self._apply, ops)
                except Exception as e:
                    for w in waiters:
                        if not w.done():
                            w.set_exception(e)
                else:
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
        finally:
            self._flusher = None

    def _apply(self, ops: list[_Op]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            for sql, rows in ops:
                db.executemany(sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self.commits += 1

    async def close(self) -> None:
        if self._closed:
            return
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)
        self._closed = True
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)
