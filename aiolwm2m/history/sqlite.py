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
primary key, history through the device's ``(endpoint, time)`` timeline of value groups,
newest first, up to a limit; a query that would go through more than a bounded amount (a
path seldom recorded, looked for over a long and busy history) is refused with
:class:`QueryTooBroad` rather than holding the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.sqlite_writer import SQLiteWriter, Statement, json_last

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
# The old table's columns, to carry its rows over (and to let the carry-over below run on
# any file: on a new one it copies nothing).
_OLD_HISTORY = """CREATE TABLE IF NOT EXISTS value_history (
        seq INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, path TEXT NOT NULL,
        time REAL NOT NULL, type TEXT NOT NULL, value, source TEXT NOT NULL)"""
SCHEMA = (
    # History keeps one row per group of values recorded together (one response,
    # notification or Send group: one device, time and source), its samples a JSON array
    # of [path, type, value] whose seqs run from the row's seq up. With a row per value
    # the writer spent 85 us per Read of /3/0 (15 rows and index entries, and the latest
    # values); with a row per group, 26 (``bench/bench_rest.py``). A path's history is
    # picked out of the device's timeline (SQL finds the groups whose text holds the path,
    # Python the samples in them).
    """CREATE TABLE IF NOT EXISTS value_groups (
        seq INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, time REAL NOT NULL,
        source TEXT NOT NULL, count INTEGER NOT NULL, samples TEXT NOT NULL)""",
    # (endpoint, time) and the rowid: a timeline newest first, ties by seq, from the index.
    "CREATE INDEX IF NOT EXISTS value_groups_timeline ON value_groups(endpoint, time)",
    # Files made before keep their values: each old row becomes a group of one.
    _OLD_HISTORY,
    """INSERT OR IGNORE INTO value_groups (seq, endpoint, time, source, count, samples)
        SELECT seq, endpoint, time, source, 1, json_array(json_array(path, type,
            CASE WHEN typeof(value) = 'blob' THEN json_object('hex', hex(value))
            ELSE value END))
        FROM value_history""",
    "DROP TABLE value_history",
    # No index on time alone: retention by age scans the table once per prune_interval in
    # the writer process, which costs less than keeping one more index on every insert.
    """CREATE TABLE IF NOT EXISTS latest_values (
        endpoint TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
        type TEXT NOT NULL, value, source TEXT NOT NULL,
        PRIMARY KEY (endpoint, path)) WITHOUT ROWID""",
)
# The writer process encodes the samples (the last parameter) as JSON, on its own core.
INSERT_GROUP = json_last("INSERT OR REPLACE INTO value_groups "
                         "(endpoint, time, source, seq, count, samples) VALUES (?,?,?,?,?,?)")
# Rows are ValueSample tuples as they are: these name the columns in that order.
_COLUMNS = "endpoint, path, time, type, value, source, seq"
UPSERT_LATEST = (
    f"INSERT INTO latest_values ({_COLUMNS}) VALUES (?,?,?,?,?,?,?) "
    "ON CONFLICT (endpoint, path) DO UPDATE "
    "SET seq=excluded.seq, time=excluded.time, type=excluded.type, value=excluded.value, "
    "source=excluded.source WHERE (excluded.time, excluded.seq) >= "
    "(latest_values.time, latest_values.seq)")
#: SQLite virtual-machine steps one read may take (some tens of milliseconds).
QUERY_BUDGET = 2_000_000
_BUDGET_CHECK_EVERY = 10_000
#: Samples one history read may decode from the groups SQL found (some tens of ms).
DECODE_BUDGET = 200_000


_Row = tuple[str, str, float, str, PlainValue, str, int]
#: Values recorded together: endpoint, time, source, the first value's seq, the values.
_Group = tuple[str, float, str, int, list[PathValue]]


#: What SQLite's INTEGER holds (signed 64 bits). An Unsigned Integer above it is kept in the
#: latest values as its decimal text: one such value made the whole batch's commit fail,
#: every device's values with it.
_INT64 = range(-(2**63), 2**63)
_INTEGER_TYPES = frozenset({"Integer", "Unsigned Integer", "Time"})


def _row(row: tuple[Any, ...]) -> ValueSample:
    endpoint, path, at, rtype, value, source, seq = row
    if type(value) is str and rtype in _INTEGER_TYPES:
        value = int(value)
    elif value is None:  # SQLite keeps a NaN as NULL
        value = math.nan
    return ValueSample(endpoint, path, at, rtype, typed_from_store(rtype, value), source, seq)


def _stored_value(rtype: str, value: Any) -> PlainValue:
    if type(value) is dict:  # bytes, as the writer encodes them
        return bytes.fromhex(value["hex"])
    if value is None:  # a NaN in a row carried over from a file made before
        return math.nan
    return typed_from_store(rtype, value)


def _group_samples(group: _Group, prefix: str) -> list[ValueSample]:
    endpoint, at, source, seq, values = group
    return [ValueSample(endpoint, path, at, rtype, value, source, seq + i)
            for i, (path, rtype, value) in enumerate(values) if under(path, prefix)]


def _too_broad() -> QueryTooBroad:
    return QueryTooBroad("too many values to go through: narrow the path or the time range")


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
        #: Samples one history read may decode (QueryTooBroad beyond).
        self.decode_budget = DECODE_BUDGET
        self._loop = asyncio.get_running_loop()
        #: Recorded, not yet handed to the writer; handed over, not yet committed.
        self._pending: list[_Group] = []
        self._unconfirmed: dict[asyncio.Future[None], list[_Group]] = {}
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
        row = reader.execute("SELECT seq + count - 1 FROM value_groups ORDER BY seq DESC "
                             "LIMIT 1").fetchone()
        return cls(path, writer, reader, row[0] if row else 0, retention or Retention(), clock,
                   flush_interval, max_buffered)

    # -- recording ------------------------------------------------------------------------

    def record(self, endpoint: str, time: float, source: str, values: Sequence[PathValue]
               ) -> None:
        endpoint = device_key(endpoint)
        count = len(values)
        if self._closed or count > self.max_buffered - self._buffered:
            self._drop(count)
            return
        if not count:
            return
        # Plain tuples and lists: what the writer's pipe (marshal) carries.
        plain = [v if type(v) is tuple else (v[0], v[1], v[2]) for v in values]
        self._pending.append((endpoint, time, source, self._seq + 1, plain))
        self._seq += count
        self._buffered += count
        self.stats.recorded += count
        if self._timer is None:
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
        statements: list[Statement] = []
        for group in batch:
            endpoint, at, source, seq, values = group
            statements.append((INSERT_GROUP, (endpoint, at, source, seq, len(values), values)))
            for path, rtype, value in values:
                key = (endpoint, path)
                old = newest.get(key)
                if old is None or at >= old[2]:
                    if type(value) is int and value not in _INT64:
                        value = str(value)
                    newest[key] = (endpoint, path, at, rtype, value, source, seq)
                seq += 1
        statements.extend((UPSERT_LATEST, s) for s in newest.values())
        # The writer shares one future between the writes of a loop iteration.
        future = self.writer.submit(statements)
        if future not in self._unconfirmed:
            self._unconfirmed[future] = []
            future.add_done_callback(self._committed)
        self._unconfirmed[future].extend(batch)

    def _committed(self, future: asyncio.Future[None]) -> None:
        batch = self._unconfirmed.pop(future, [])
        count = sum(len(group[4]) for group in batch)
        self._buffered -= count
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.stats.dropped += count
            _throttled.warning("values-write", "values store: %d values not written: %s",
                               count, error)

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._hand_over()
        if self._unconfirmed:
            await asyncio.gather(*self._unconfirmed, return_exceptions=True)

    # -- reading --------------------------------------------------------------------------

    def _buffered_samples(self, endpoint: str, prefix: str) -> list[ValueSample]:
        return [s for batch in (*self._unconfirmed.values(), self._pending) for group in batch
                if group[0] == endpoint for s in _group_samples(group, prefix)]

    @contextlib.contextmanager
    def _budgeted(self) -> Iterator[None]:
        """Queries within: SQLite interrupts them beyond ``query_budget`` steps."""
        steps = 0

        def budget() -> int:
            nonlocal steps
            steps += _BUDGET_CHECK_EVERY
            return 1 if steps > self.query_budget else 0

        self._reader.set_progress_handler(budget, _BUDGET_CHECK_EVERY)
        try:
            yield
        except sqlite3.OperationalError as e:
            if "interrupt" in str(e):
                raise _too_broad() from None
            raise
        finally:
            self._reader.set_progress_handler(None, 0)

    def _query(self, sql: str, params: Sequence[Any]) -> list[ValueSample]:
        with self._budgeted():
            return [_row(r) for r in self._reader.execute(sql, params)]

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
        # One walk of the device's timeline, newest first, through the groups whose JSON
        # holds the path or a path below it ("/3/0" or "/3/0/...; a string value may
        # hold that text too: the samples are picked again here).
        where, params = "", []
        if prefix_range(prefix) is not None:
            quoted = json.dumps(prefix)
            where, params = (" AND (instr(samples, ?) OR instr(samples, ?))",
                             [quoted, quoted[:-1] + "/"])
        rows: list[ValueSample] = []
        decoded = 0
        with self._budgeted():
            cursor = self._reader.execute(
                "SELECT endpoint, time, source, seq, samples FROM value_groups WHERE "
                f"endpoint = ?{where}{when} ORDER BY time DESC, seq DESC",
                [endpoint, *params, *times])
            try:
                for ep, at, source, first, text in cursor:
                    values = json.loads(text)
                    decoded += len(values)
                    if decoded > self.decode_budget:
                        raise _too_broad()
                    for i in range(len(values) - 1, -1, -1):
                        path, rtype, value = values[i]
                        if under(path, prefix):
                            rows.append(ValueSample(ep, path, at, rtype,
                                                    _stored_value(rtype, value), source,
                                                    first + i))
                    if len(rows) >= limit:
                        break
            finally:
                cursor.close()
        seen = {s.seq for s in rows}
        rows.extend(s for s in self._buffered_samples(endpoint, prefix)
                    if s.seq not in seen and (since is None or s.time >= since)
                    and (until is None or s.time <= until))
        rows.sort(key=lambda s: (s.time, s.seq))
        return rows[-limit:]

    # -- forgetting and retention ---------------------------------------------------------

    async def forget(self, endpoint: str) -> None:
        endpoint = device_key(endpoint)
        # Pending values are never written; those handed over already are written and then
        # deleted below (reads stop seeing them now).
        for batch in (self._pending, *self._unconfirmed.values()):
            self._buffered -= sum(len(g[4]) for g in batch if g[0] == endpoint)
            batch[:] = [g for g in batch if g[0] != endpoint]
        await self.flush()
        await self.writer.submit([
            ("DELETE FROM value_groups WHERE endpoint = ?", (endpoint,)),
            ("DELETE FROM latest_values WHERE endpoint = ?", (endpoint,))])

    async def prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age
        keep = self.retention.max_samples
        if self._timer is not None:  # what was recorded before is pruned too
            self._timer.cancel()
            self._hand_over()
        await self.writer.submit([
            ("DELETE FROM value_groups WHERE time < ?", (cutoff,)),
            # A group with a sample beyond the newest max_samples goes whole: at most
            # max_samples are kept.
            ("DELETE FROM value_groups WHERE seq <= (SELECT seq + count - 1 FROM "
             "value_groups ORDER BY seq DESC LIMIT 1) - ?", (keep,)),
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
