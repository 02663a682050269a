"""Group commit for SQLite in a writer process: one transaction per batch of writes.

Writes submitted during one event-loop iteration share a batch (and one future). Batches
travel to a child process (:mod:`aiolwm2m.store.sqlite_writer_child`) over a pipe; it
applies every batch that has arrived in one transaction and acknowledges them after COMMIT,
so under load many requests share one fsync, while an idle store commits each write at
once. The batch's future completes only after the acknowledgement; whoever awaits it (or,
on the request path, holds its reply until it is done) thereby keeps "durable before
acknowledged".

Why a process and not a thread: SQLite's C code releases the GIL around every row, and a
thread then waits for the event loop to hand the GIL back (up to the 5 ms switch interval)
each time; under load that convoy cut throughput to a few thousand rows per second. A
process has a GIL of its own and uses the second core.

Framing, both directions: a 4-byte big-endian length and a ``marshal`` payload. Parent to
child: the schema first, then ``(batch_id, [(SQL, params), ...])``; child to parent:
``("ready", None)``, then ``("done", ([batch ids], error or None))`` per transaction.
"""

from __future__ import annotations

import asyncio
import logging
import marshal
import os
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_LEN = struct.Struct(">I")


Statement = tuple[str | tuple[str, str], Sequence[Any]]


def json_last(sql: str) -> tuple[str, str]:
    """The key of a statement whose last parameter (plain tuples, lists, numbers, strings)
    the writer process encodes as JSON: encoding is a good part of a write's cost, and
    there it runs on the other core."""
    return ("json-last", sql)


class WriterFailed(sqlite3.OperationalError):
    """The writer process failed or went away; the writes were not committed."""


class SQLiteWriter:
    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 schema: Sequence[str] = ()) -> None:
        self.path = path
        self.synchronous = synchronous
        self._loop = asyncio.get_running_loop()
        self._pending: list[Statement] = []
        self._pending_future: asyncio.Future[None] | None = None
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._next_batch = 0
        self._outbuf = bytearray()
        self._inbuf = bytearray()
        self._closed = False
        self.commits = 0
        self.statements = 0
        # A session of its own: Ctrl-C in a terminal (or any signal to the server's process
        # group) must not kill the writer while the server still commits its shutdown
        # writes. The writer ends when its input does, so it never outlives the server.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "aiolwm2m.store.sqlite_writer_child", str(path),
             synchronous], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._wfd = self._proc.stdin.fileno()
        self._rfd = self._proc.stdout.fileno()
        self._write_blocking(list(schema))
        kind, detail = self._read_blocking()
        if kind != "ready":
            self._proc.wait()
            raise sqlite3.OperationalError(f"cannot open {path}: {detail}")
        os.set_blocking(self._wfd, False)
        os.set_blocking(self._rfd, False)
        self._loop.add_reader(self._rfd, self._on_readable)

    # -- blocking start-up handshake ------------------------------------------------------

    def _write_blocking(self, obj: Any) -> None:
        body = marshal.dumps(obj)
        data = _LEN.pack(len(body)) + body
        while data:
            data = data[os.write(self._wfd, data):]

    def _read_blocking(self) -> Any:
        head = b""
        while len(head) < 4:
            chunk = os.read(self._rfd, 4 - len(head))
            if not chunk:
                return ("error", "writer process exited")
            head += chunk
        n = _LEN.unpack(head)[0]
        body = b""
        while len(body) < n:
            chunk = os.read(self._rfd, n - len(body))
            if not chunk:
                return ("error", "writer process exited")
            body += chunk
        return marshal.loads(body)

    # -- submitting -----------------------------------------------------------------------

    def submit(self, statements: Sequence[Statement]) -> asyncio.Future[None]:
        """Queue writes; the returned future (shared by every write of this event-loop
        iteration) completes once they are committed."""
        if self._closed:
            fut: asyncio.Future[None] = self._loop.create_future()
            fut.set_exception(WriterFailed("the store is closed"))
            return fut
        pending = self._pending_future
        if pending is None:
            pending = self._pending_future = self._loop.create_future()
            self._loop.call_soon(self._hand_over)
        self._pending.extend(statements)
        return pending

    def _hand_over(self) -> None:
        statements, fut = self._pending, self._pending_future
        self._pending, self._pending_future = [], None
        if fut is None:
            return
        batch_id = self._next_batch
        self._next_batch += 1
        self._inflight[batch_id] = fut
        try:
            body = marshal.dumps((batch_id, statements))
        except ValueError as e:
            del self._inflight[batch_id]
            fut.set_exception(TypeError(f"unstorable value in a write: {e}"))
            return
        self._outbuf += _LEN.pack(len(body))
        self._outbuf += body
        self.statements += len(statements)
        self._write_some()

    def _write_some(self) -> None:
        while self._outbuf:
            try:
                n = os.write(self._wfd, self._outbuf)
            except BlockingIOError:
                self._loop.add_writer(self._wfd, self._on_writable)
                return
            except OSError as e:
                self._fail(WriterFailed(f"writer process pipe: {e}"))
                return
            del self._outbuf[:n]

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._wfd)
        self._write_some()

    # -- acknowledgements -----------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._rfd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._loop.remove_reader(self._rfd)
            self._fail(WriterFailed("the SQLite writer process exited"))
            return
        buf = self._inbuf
        buf += chunk
        while len(buf) >= 4:
            n = _LEN.unpack_from(buf)[0]
            if len(buf) < 4 + n:
                break
            kind, (ids, error) = marshal.loads(bytes(buf[4:4 + n]))
            del buf[:4 + n]
            if kind != "done":
                continue
            self.commits += 1
            exc = WriterFailed(f"commit failed: {error}") if error else None
            if exc is not None:
                log.error("SQLite commit of %d batches failed: %s", len(ids), error)
            for batch_id in ids:
                fut = self._inflight.pop(batch_id, None)
                if fut is None or fut.done():
                    continue
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    def _fail(self, error: BaseException) -> None:
        for fut in self._inflight.values():
            if not fut.done():
                fut.set_exception(error)
        self._inflight.clear()

    async def execute(self, statements: Sequence[Statement]) -> None:
        await self.submit(statements)

    async def aclose(self) -> None:
        """Hand over what is pending, let the writer commit it, and stop it."""
        if self._closed:
            return
        self._hand_over()
        self._closed = True
        self._loop.remove_reader(self._rfd)
        self._loop.remove_writer(self._wfd)
        outstanding = bytes(self._outbuf)
        self._outbuf.clear()
        # The child commits what it has when its input ends; wait for it off the loop.
        acks = await self._loop.run_in_executor(None, self._finish_child, outstanding)
        for ids, error in acks:
            for batch_id in ids:
                fut = self._inflight.pop(batch_id, None)
                if fut is not None and not fut.done():
                    if error:
                        fut.set_exception(WriterFailed(f"commit failed: {error}"))
                    else:
                        fut.set_result(None)
        self._fail(WriterFailed("the store is closed"))

    def _finish_child(self, outstanding: bytes) -> list[tuple[list[int], str | None]]:
        acks: list[tuple[list[int], str | None]] = []
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            os.set_blocking(self._wfd, True)
            while outstanding:
                outstanding = outstanding[os.write(self._wfd, outstanding):]
        except OSError:
            pass
        self._proc.stdin.close()
        os.set_blocking(self._rfd, True)
        leftover = bytes(self._inbuf)
        self._inbuf.clear()
        data = leftover + self._proc.stdout.read()
        while len(data) >= 4:
            n = _LEN.unpack_from(data)[0]
            kind, payload = marshal.loads(data[4:4 + n])
            data = data[4 + n:]
            if kind == "done":
                acks.append(payload)
        self._proc.wait()
        self._proc.stdout.close()
        return acks


def read_all(path: Path, sql: str, params: Sequence[Any] = (),
             row: Callable[[tuple[Any, ...]], Any] | None = None) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [row(r) for r in rows] if row else rows
