"""Values in SQLite: a database file of their own, written by a writer process of their own.

Why not the registrations' database and writer: their commits are what a Register waits for
(``synchronous=FULL``, an fsync each), and a notification storm sharing those transactions
would lengthen every one of them. Values are telemetry: they go to ``values.sqlite3`` through
a second :class:`~aiolwm2m.store.sqlite_writer.SQLiteWriter` with ``synchronous=NORMAL``
(WAL: a process crash loses nothing, a power cut the last moments), in batches gathered
for ``flush_interval`` seconds, so the event loop hands a batch over some 20 times a second
whatever the rate of values. ``bench/bench_values.py`` measures what a values storm costs
registration commits either way.

Samples not yet committed stay in memory (at most ``max_buffered``; beyond that new ones
are dropped and counted) and reads merge them in, so a read sees every sample recorded
before it. Reads run in the event loop on a read-only connection: the latest values by
primary key, history through the ``(endpoint, time, path)`` index, newest first, up to a
limit; a query that would go through more than a bounded amount (a path seldom recorded,
looked for over a long and busy history) is refused with :class:`QueryTooBroad` rather
than holding the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.sqlite_writer import SQLiteWriter, Statement

from .device_key import device_key
from .samples import (
    PathValue,
    PlainValue,
    ValueSample,
    prefix_range,
    typed_from_store,
    under,
)
from .store import MAX_QUERY_SAMPLES, QueryTooBroad, Retention, ValueStoreStats

log = logging.getLogger(__name__)
_throttled = LogThrottle(log)

FILE_NAME = "values.sqlite3"
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS value_history (
        seq INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, path TEXT NOT NULL,
        time REAL NOT NULL, type TEXT NOT NULL, value, source TEXT NOT NULL)""",
    # A device's timeline, with the path in the index so that a path's history is picked
    # out of it without reading rows. An index led by (endpoint, path) had one insertion
    # point per resource: every commit rewrote a page for each resource of each device
    # read (100 devices' /3/0 at 50 ms commits: 1,600 pages, 6 MB of WAL), five times
    # the cost of a timeline's one point per device (``bench/bench_rest.py``). Files made
    # before keep their data; the old index goes.
    "DROP INDEX IF EXISTS value_history_by_path",
    "CREATE INDEX IF NOT EXISTS value_history_timeline ON value_history(endpoint, time, path)",
    # No index on time alone: retention by age scans the table once per prune_interval in
    # the writer process, which costs less than keeping one more index on every insert.
    """CREATE TABLE IF NOT EXISTS latest_values (
        endpoint TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
        type TEXT NOT NULL, value, source TEXT NOT NULL,
        PRIMARY KEY (endpoint, path)) WITHOUT ROWID""",
)
# Rows are ValueSample tuples as they are: these name the columns in that order.
_COLUMNS = "endpoint, path, time, type, value, source, seq"
INSERT_HISTORY = f"INSERT OR REPLACE INTO value_history ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
UPSERT_LATEST = (
    f"INSERT INTO latest_values ({_COLUMNS}) VALUES (?,?,?,?,?,?,?) "
    "ON CONFLICT (endpoint, path) DO UPDATE "
    "SET seq=excluded.seq, time=excluded.time, type=excluded.type, value=excluded.value, "
    "source=excluded.source WHERE (excluded.time, excluded.seq) >= "
    "(latest_values.time, latest_values.seq)")
#: SQLite virtual-machine steps one read may take (some tens of milliseconds).
QUERY_BUDGET = 2_000_000
_BUDGET_CHECK_EVERY = 10_000


_Row = tuple[str, str, float, str, PlainValue, str, int]


def _row(row: tuple[Any, ...]) -> ValueSample:
    endpoint, path, at, rtype, value, source, seq = row
    return ValueSample(endpoint, path, at, rtype, typed_from_store(rtype, value), source, seq)


def _newer(a: ValueSample, b: ValueSample | None) -> bool:
    return b is None or (a.time, a.seq) >= (b.time, b.seq)


class SQLiteValueStore:
    def __init__(self, path: Path, writer: SQLiteWriter, reader: sqlite3.Connection,
                 last_seq: int, retention: Retention, clock: Callable[[], float],
                 flush_interval: float, max_buffered: int) -> None:
        self.path = path
        self.writer = writer
        self._reader = reader
        self._seq = last_seq
        self.retention = retention
        self.clock = clock
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        self.stats = ValueStoreStats()
        #: SQLite virtual-machine steps one read may take (QueryTooBroad beyond).
        self.query_budget = QUERY_BUDGET
        self._loop = asyncio.get_running_loop()
        #: Recorded, not yet handed to the writer; handed over, not yet committed. Rows are
        #: plain tuples of ValueSample's fields.
        self._pending: list[_Row] = []
        self._unconfirmed: dict[asyncio.Future[None], list[_Row]] = {}
        self._buffered = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, data_dir: Path, *, retention: Retention | None = None,
                   clock: Callable[[], float] = time.time, flush_interval: float = 0.05,
                   max_buffered: int = 100_000) -> SQLiteValueStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / FILE_NAME
        writer = SQLiteWriter(path, synchronous="NORMAL", schema=SCHEMA)
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        row = reader.execute("SELECT max(seq) FROM value_history").fetchone()
        return cls(path, writer, reader, row[0] or 0, retention or Retention(), clock,
                   flush_interval, max_buffered)

    # -- recording ------------------------------------------------------------------------

    def record(self, endpoint: str, time: float, source: str, values: Sequence[PathValue]
               ) -> None:
        endpoint = device_key(endpoint)
        count = len(values)
        if self._closed or count > self.max_buffered - self._buffered:
            self._drop(count)
            return
        seq = self._seq
        # Plain tuples (what the writer's pipe carries): ValueSample's fields, in order.
        self._pending.extend((endpoint, path, time, rtype, value, source, seq + i)
                             for i, (path, rtype, value) in enumerate(values, 1))
        self._seq = seq + count
        self._buffered += count
        self.stats.recorded += count
        if self._timer is None and count:
            self._timer = self._loop.call_later(self.flush_interval, self._hand_over)

    def _drop(self, count: int) -> None:
        self.stats.dropped += count
        if not self._closed:
            _throttled.warning("values-dropped", "values store behind: %d values not kept "
                               "(%d waiting to be written)", count, self._buffered)

    def _hand_over(self) -> None:
        self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        newest: dict[tuple[str, str], _Row] = {}
        for row in batch:
            key = (row[0], row[1])
            old = newest.get(key)
            if old is None or row[2] >= old[2]:
                newest[key] = row
        statements: list[Statement] = [(INSERT_HISTORY, s) for s in batch]
        statements.extend((UPSERT_LATEST, s) for s in newest.values())
        # The writer shares one future between the writes of a loop iteration.
        future = self.writer.submit(statements)
        if future not in self._unconfirmed:
            self._unconfirmed[future] = []
            future.add_done_callback(self._committed)
        self._unconfirmed[future].extend(batch)

    def _committed(self, future: asyncio.Future[None]) -> None:
        batch = self._unconfirmed.pop(future, [])
        self._buffered -= len(batch)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.stats.dropped += len(batch)
            _throttled.warning("values-write", "values store: %d values not written: %s",
                               len(batch), error)

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._hand_over()
        if self._unconfirmed:
            await asyncio.gather(*self._unconfirmed, return_exceptions=True)

    # -- reading --------------------------------------------------------------------------

    def _buffered_samples(self, endpoint: str, prefix: str) -> list[ValueSample]:
        rows = [r for batch in (*self._unconfirmed.values(), self._pending) for r in batch
                if r[0] == endpoint and under(r[1], prefix)]
        return [ValueSample._make(r) for r in rows]

    def _query(self, sql: str, params: Sequence[Any]) -> list[ValueSample]:
        steps = 0

        def budget() -> int:
            nonlocal steps
            steps += _BUDGET_CHECK_EVERY
            return 1 if steps > self.query_budget else 0

        self._reader.set_progress_handler(budget, _BUDGET_CHECK_EVERY)
        try:
            return [_row(r) for r in self._reader.execute(sql, params)]
        except sqlite3.OperationalError as e:
            if "interrupt" in str(e):
                raise QueryTooBroad("too many values to go through: narrow the path or the "
                                    "time range") from None
            raise
        finally:
            self._reader.set_progress_handler(None, 0)

    @staticmethod
    def _path_conditions(prefix: str) -> list[tuple[str, list[Any]]]:
        """SQL conditions (with their parameters) that together select ``prefix`` and the
        paths below it from the latest values: separately, so that each is a range of the
        primary key."""
        below = prefix_range(prefix)
        if below is None:
            return [("", [])]
        return [(" AND path = ?", [prefix]), (" AND path >= ? AND path < ?", list(below))]

    async def latest(self, endpoint: str, prefix: str = "") -> list[ValueSample]:
        endpoint = device_key(endpoint)
        rows: list[ValueSample] = []
        for where, params in self._path_conditions(prefix):
            rows += self._query(f"SELECT {_COLUMNS} FROM latest_values WHERE endpoint = ?"
                                f"{where} ORDER BY path LIMIT {MAX_QUERY_SAMPLES}",
                                [endpoint, *params])
        by_path = {s.path: s for s in rows}
        for sample in self._buffered_samples(endpoint, prefix):
            if _newer(sample, by_path.get(sample.path)):
                by_path[sample.path] = sample
        return [by_path[p] for p in sorted(by_path)][:MAX_QUERY_SAMPLES]

    async def history(self, endpoint: str, prefix: str = "", since: float | None = None,
                      until: float | None = None, limit: int = 1000) -> list[ValueSample]:
        endpoint = device_key(endpoint)
        limit = max(0, min(limit, MAX_QUERY_SAMPLES))
        if not limit:
            return []
        when, times = "", []
        if since is not None:
            when += " AND time >= ?"
            times.append(since)
        if until is not None:
            when += " AND time <= ?"
            times.append(until)
        # One walk of the device's timeline, newest first, for the path and what is below.
        below = prefix_range(prefix)
        where, params = ("", []) if below is None else (
            " AND (path = ? OR (path >= ? AND path < ?))", [prefix, *below])
        rows = self._query(f"SELECT {_COLUMNS} FROM value_history WHERE endpoint = ?"
                           f"{where}{when} ORDER BY time DESC, seq DESC LIMIT ?",
                           [endpoint, *params, *times, limit])
        seen = {s.seq for s in rows}
        rows.extend(s for s in self._buffered_samples(endpoint, prefix)
                    if s.seq not in seen and (since is None or s.time >= since)
                    and (until is None or s.time <= until))
        rows.sort(key=lambda s: (s.time, s.seq))
        return rows[-limit:]

    # -- forgetting and retention ---------------------------------------------------------

    async def forget(self, endpoint: str) -> None:
        endpoint = device_key(endpoint)
        self._pending = [r for r in self._pending if r[0] != endpoint]
        for batch in self._unconfirmed.values():
            batch[:] = [r for r in batch if r[0] != endpoint]
        await self.flush()
        await self.writer.submit([
            ("DELETE FROM value_history WHERE endpoint = ?", (endpoint,)),
            ("DELETE FROM latest_values WHERE endpoint = ?", (endpoint,))])

    async def prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age
        keep = self.retention.max_samples
        if self._timer is not None:  # what was recorded before is pruned too
            self._timer.cancel()
            self._hand_over()
        await self.writer.submit([
            ("DELETE FROM value_history WHERE time < ?", (cutoff,)),
            ("DELETE FROM value_history WHERE seq <= "
             "(SELECT max(seq) FROM value_history) - ?", (keep,)),
            ("DELETE FROM latest_values WHERE time < ?", (cutoff,)),
            ("DELETE FROM latest_values WHERE (endpoint, path) IN (SELECT endpoint, path "
             "FROM latest_values ORDER BY time LIMIT max(0, "
             "(SELECT count(*) FROM latest_values) - ?))", (keep,))])

    def start(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._prune_every())

    async def _prune_every(self) -> None:
        while True:
            await asyncio.sleep(self.retention.prune_interval)
            try:
                await self.prune(self.clock())
            except Exception as e:  # the writer restarting: the next round prunes
                _throttled.warning("values-prune", "values store: retention not applied: %s",
                                   e)

    async def close(self) -> None:
        if self._closed:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
        self._closed = True
        await self.writer.aclose()
        self._reader.close()
