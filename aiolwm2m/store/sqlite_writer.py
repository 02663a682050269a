"""Group commit for SQLite: one writer thread, one transaction per batch of writes.

Writes submitted while a transaction is committing wait for the next one, so under load many
requests share one fsync and the commit latency stays in the low milliseconds; an idle store
commits each write at once. The awaiting coroutine resumes only after COMMIT returned, which
is what makes "durable before acknowledged" hold.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any]]
_STOP = object()


class SQLiteWriter:
    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 schema: Sequence[str] = ()) -> None:
        self.path = path
        self.synchronous = synchronous
        self._schema = schema
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
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
                batch: list[tuple[Sequence[Statement], asyncio.Future[None]]]) -> None:
        error: BaseException | None = None
        try:
            conn.execute("BEGIN")
            n = 0
            # Consecutive statements with the same SQL go through one executemany: the
            # binding loop then runs in C, which matters because this thread competes with
            # the event loop for the GIL.
            run_sql: str | None = None
            run_params: list[Sequence[Any]] = []
            for statements, _ in batch:
                for sql, params in statements:
                    if sql != run_sql:
                        if run_params:
                            conn.executemany(run_sql, run_params)  # type: ignore[arg-type]
                        run_sql, run_params = sql, []
                    run_params.append(params)
                    n += 1
            if run_params:
                conn.executemany(run_sql, run_params)  # type: ignore[arg-type]
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
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((statements, fut))
        return fut

    async def execute(self, statements: Sequence[Statement]) -> None:
        await self.submit(statements)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


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
