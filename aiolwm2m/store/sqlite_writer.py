"""Group commit for SQLite: one writer thread, one transaction per batch of writes.

Writes submitted during one event-loop iteration share a batch (and one future); batches
that arrive while a transaction commits wait for the next one, so under load many requests
share one fsync and the commit latency stays in the low milliseconds, while an idle store
commits each write at once. The awaiting coroutine resumes only after COMMIT returned, which
is what makes "durable before acknowledged" hold.

The thread competes with the event loop for the GIL, and Python's sqlite3 releases and
retakes it around every row it steps. Hot tables are therefore written with :class:`Bulk`
statements: the rows of a batch travel as one JSON array and one statement inserts them all
through ``json_each()``, so the thread takes the GIL a handful of times per batch instead of
once per row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bulk:
    """A statement whose single parameter is a JSON array of rows (read with json_each)."""

    sql: str


Statement = tuple[str, Sequence[Any]] | tuple[Bulk, Any]
_STOP = object()


class SQLiteWriter:
    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 schema: Sequence[str] = ()) -> None:
        self.path = path
        self.synchronous = synchronous
        self._schema = schema
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._pending: list[Statement] = []
        self._pending_future: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"sqlite-writer:{path.name}",
                                        daemon=True)
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.commits = 0
        self.statements = 0
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _run(self) -> None:
        try:
            conn = self.connect()
            for stmt in self._schema:
                conn.execute(stmt)
        except BaseException as e:
            self._startup_error = e
            self._ready.set()
            return
        self._ready.set()
        get, get_nowait = self._queue.get, self._queue.get_nowait
        try:
            while True:
                item = get()
                if item is _STOP:
                    return
                batch = [item]
                stop = False
                while True:
                    try:
                        nxt = get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection,
                batch: list[tuple[list[Statement], asyncio.Future[None]]]) -> None:
        error: BaseException | None = None
        try:
            conn.execute("BEGIN")
            n = 0
            # Consecutive statements with the same SQL run as one executemany (or, for Bulk
            # statements, one execute over all their rows); order across different
            # statements is kept, so a delete after an insert still wins.
            run_key: str | Bulk | None = None
            run: list[Any] = []
            for statements, _ in batch:
                for key, params in statements:
                    if key != run_key:
                        _flush(conn, run_key, run)
                        run_key, run = key, []
                    run.append(params)
                    n += 1
            _flush(conn, run_key, run)
            conn.execute("COMMIT")
            self.commits += 1
            self.statements += n
        except BaseException as e:  # the whole batch fails together
            log.error("SQLite commit of %d writes failed: %s", len(batch), e)
            error = e
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        futures = [f for _, f in batch]
        try:
            self._loop.call_soon_threadsafe(_resolve, futures, error)
        except RuntimeError:
            pass  # the event loop is gone: nobody is waiting any more

    def submit(self, statements: Sequence[Statement]) -> asyncio.Future[None]:
        """Queue writes; the returned future (shared by every write of this event-loop
        iteration) completes once they are committed."""
        fut = self._pending_future
        if fut is None:
            fut = self._pending_future = self._loop.create_future()
            self._loop.call_soon(self._hand_over)
        self._pending.extend(statements)
        return fut

    def _hand_over(self) -> None:
        statements, fut = self._pending, self._pending_future
        self._pending, self._pending_future = [], None
        if fut is not None:
            self._queue.put((statements, fut))

    async def execute(self, statements: Sequence[Statement]) -> None:
        await self.submit(statements)

    def close(self) -> None:
        if self._thread.is_alive():
            self._hand_over()
            self._queue.put(_STOP)
            self._thread.join()


def _flush(conn: sqlite3.Connection, key: str | Bulk | None, run: list[Any]) -> None:
    if not run or key is None:
        return
    if isinstance(key, Bulk):
        conn.execute(key.sql, (json.dumps(run, separators=(",", ":")),))
    else:
        conn.executemany(key, run)


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for f in futures:
        if f.done():
            continue
        if error is None:
            f.set_result(None)
        else:
            f.set_exception(error)


def read_all(path: Path, sql: str, params: Sequence[Any] = (),
             row: Callable[[tuple[Any, ...]], Any] | None = None) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [row(r) for r in rows] if row else rows
