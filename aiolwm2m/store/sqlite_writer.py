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

When the child dies (killed, out of memory, a crash in SQLite), the batches it had not
acknowledged fail (their outcome is unknown: the caller answers 5.00), the dead child is
reaped, and a new one is started after a back-off (``restart_delay_min`` doubling up to
``restart_delay_max`` while children keep dying within ``stable_after`` of their start).
Acknowledged writes are committed in the database file, so nothing acknowledged is lost.
Writes submitted while the writer restarts wait for the new child (the request path does
not submit then: it answers 5.03 with Max-Age, see :meth:`SQLiteWriter.retry_after`); if a
restart attempt fails, they fail with it.

Framing, both directions: a 4-byte big-endian length and a ``marshal`` payload. Parent to
child: the schema first, then ``(batch_id, [(SQL, params), ...])``; child to parent:
``("ready", None)``, then ``("done", ([batch ids], error or None))`` per transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
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

#: Writer states (``SQLiteWriter.state``), as the health endpoint and metrics report them.
WRITER_OK = "ok"
WRITER_RESTARTING = "restarting"
WRITER_CLOSED = "closed"

Statement = tuple[str | tuple[str, str], Sequence[Any]]
Child = subprocess.Popen[bytes]


def json_last(sql: str) -> tuple[str, str]:
    """The key of a statement whose last parameter (plain tuples, lists, numbers, strings)
    the writer process encodes as JSON: encoding is a good part of a write's cost, and
    there it runs on the other core."""
    return ("json-last", sql)


class WriterFailed(sqlite3.OperationalError):
    """The writer process failed or went away; the writes were not committed."""


# -- the child process, blocking (start-up and restarts run off the event loop) -----------


def _write_frame_blocking(fd: int, obj: Any) -> None:
    body = marshal.dumps(obj)
    data = _LEN.pack(len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def _read_frame_blocking(fd: int) -> Any:
    head = b""
    while len(head) < 4:
        chunk = os.read(fd, 4 - len(head))
        if not chunk:
            return ("error", "writer process exited")
        head += chunk
    n = _LEN.unpack(head)[0]
    body = b""
    while len(body) < n:
        chunk = os.read(fd, n - len(body))
        if not chunk:
            return ("error", "writer process exited")
        body += chunk
    return marshal.loads(body)


def _start_child(path: Path, synchronous: str, schema: list[str]) -> Child:
    """A writer process that has opened ``path`` and applied ``schema``."""
    # A session of its own: Ctrl-C in a terminal (or any signal to the server's process
    # group) must not kill the writer while the server still commits its shutdown
    # writes. The writer ends when its input does, so it never outlives the server.
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolwm2m.store.sqlite_writer_child", str(path), synchronous],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        _write_frame_blocking(proc.stdin.fileno(), schema)
        kind, detail = _read_frame_blocking(proc.stdout.fileno())
    except OSError as e:
        kind, detail = "error", f"writer process pipe: {e}"
    if kind != "ready":
        _reap(proc)
        raise sqlite3.OperationalError(f"cannot open {path}: {detail}")
    return proc


def _reap(proc: Child) -> None:
    """Make sure ``proc`` is gone and waited for (no zombie), and close its pipes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class SQLiteWriter:
    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 schema: Sequence[str] = (), restart_delay_min: float = 0.1,
                 restart_delay_max: float = 5.0, stable_after: float = 10.0) -> None:
        self.path = path
        self.synchronous = synchronous
        self.restart_delay_min = restart_delay_min
        self.restart_delay_max = restart_delay_max
        #: A child that lived this long before dying restarts after the shortest delay.
        self.stable_after = stable_after
        self._schema = list(schema)
        self._loop = asyncio.get_running_loop()
        self._pending: list[Statement] = []
        self._pending_future: asyncio.Future[None] | None = None
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._next_batch = 0
        self._outbuf = bytearray()
        self._inbuf = bytearray()
        self.commits = 0
        self.statements = 0
        #: WRITER_OK, WRITER_RESTARTING (the child died; a new one is on its way) or
        #: WRITER_CLOSED.
        self.state = WRITER_OK
        #: New children started after one died.
        self.restarts = 0
        #: Why the last child died (or the last restart failed), for the operator.
        self.last_error: str | None = None
        #: Loop time of the next restart attempt while restarting.
        self.retry_at = 0.0
        #: The back-off before the current (or last) restart.
        self.restart_delay = 0.0
        self._next_delay = restart_delay_min
        self._restart_timer: asyncio.TimerHandle | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._proc: Child = _start_child(path, synchronous, self._schema)
        self._wfd = -1
        self._rfd = -1
        self._attach(self._proc)

    def _attach(self, proc: Child) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._wfd = proc.stdin.fileno()
        self._rfd = proc.stdout.fileno()
        os.set_blocking(self._wfd, False)
        os.set_blocking(self._rfd, False)
        self._loop.add_reader(self._rfd, self._on_readable)
        self._started_at = self._loop.time()
        self.state = WRITER_OK

    def _detach(self) -> None:
        self._loop.remove_reader(self._rfd)
        self._loop.remove_writer(self._wfd)
        self._outbuf.clear()
        self._inbuf.clear()

    # -- submitting -----------------------------------------------------------------------

    def submit(self, statements: Sequence[Statement]) -> asyncio.Future[None]:
        """Queue writes; the returned future (shared by every write of this event-loop
        iteration) completes once they are committed."""
        if self.state == WRITER_CLOSED:
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
        if self.state != WRITER_OK:
            return  # kept for the next child (see _restart)
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
                self._child_died(f"writer process pipe: {e}")
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
            self._child_died("the SQLite writer process exited")
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

    def _fail_pending(self, error: BaseException) -> None:
        fut = self._pending_future
        self._pending, self._pending_future = [], None
        if fut is not None and not fut.done():
            fut.set_exception(error)

    async def execute(self, statements: Sequence[Statement]) -> None:
        await self.submit(statements)

    # -- the child died: fail what it held, reap it, start another --------------------------

    def _child_died(self, reason: str) -> None:
        if self.state != WRITER_OK:
            return
        self.state = WRITER_RESTARTING
        self.last_error = reason
        self._detach()
        self._proc.poll()  # reaps it now if it has exited; _replace_child makes sure
        lost = len(self._inflight)
        self._fail(WriterFailed(f"{reason}; the write was not acknowledged"))
        if self._loop.time() - self._started_at >= self.stable_after:
            self._next_delay = self.restart_delay_min
        delay = self._back_off()
        log.error("%s (%d batches in flight failed); restarting it in %.1f s",
                  reason, lost, delay)
        self._schedule_restart(delay)

    def _back_off(self) -> float:
        delay = self.restart_delay = self._next_delay
        self._next_delay = min(self.restart_delay_max, delay * 2)
        return delay

    def _schedule_restart(self, delay: float) -> None:
        self.retry_at = self._loop.time() + delay
        self._restart_timer = self._loop.call_later(delay, self._begin_restart)

    def _begin_restart(self) -> None:
        self._restart_timer = None
        self._restart_task = self._loop.create_task(self._restart())

    async def _restart(self) -> None:
        try:
            proc = await self._loop.run_in_executor(None, self._replace_child, self._proc)
        except Exception as e:  # cannot start a process, or open the database
            self._restart_task = None
            self.last_error = f"restart failed: {e}"
            self._fail_pending(WriterFailed(self.last_error))
            delay = self._back_off()
            log.error("the SQLite writer could not be restarted (%s); next attempt in "
                      "%.1f s", e, delay)
            self._schedule_restart(delay)
            return
        self._restart_task = None
        self._attach(proc)
        self.restarts += 1
        log.warning("the SQLite writer process is back (restart %d)", self.restarts)
        if self._pending_future is not None:
            self._hand_over()

    def _replace_child(self, old: Child) -> Child:
        _reap(old)
        return _start_child(self.path, self.synchronous, self._schema)

    @property
    def pid(self) -> int:
        """The current writer process."""
        return self._proc.pid

    def retry_after(self) -> float:
        """Seconds until the writer should take writes again (0 when it does now)."""
        if self.state != WRITER_RESTARTING:
            return 0.0
        return max(0.0, self.retry_at - self._loop.time())

    # -- closing --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Hand over what is pending, let the writer commit it, and stop it."""
        if self.state == WRITER_CLOSED:
            return
        if self.state == WRITER_RESTARTING:
            # Bring the writer back at once so that writes made on the way out commit.
            if self._restart_timer is not None:
                self._restart_timer.cancel()
                self._begin_restart()
            if self._restart_task is not None:
                await self._restart_task
            if self.state != WRITER_OK:
                if self._restart_timer is not None:
                    self._restart_timer.cancel()
                    self._restart_timer = None
                self.state = WRITER_CLOSED
                self._fail_pending(WriterFailed("the store is closed"))
                return
        self._hand_over()
        self.state = WRITER_CLOSED
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
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        os.set_blocking(self._rfd, True)
        leftover = bytes(self._inbuf)
        self._inbuf.clear()
        try:
            data = leftover + self._proc.stdout.read()
        except OSError:
            data = leftover
        while len(data) >= 4:
            n = _LEN.unpack_from(data)[0]
            if len(data) < 4 + n:
                break
            kind, payload = marshal.loads(data[4:4 + n])
            data = data[4 + n:]
            if kind == "done":
                acks.append(payload)
        self._proc.wait()  # it exits once it has committed what it read
        _reap(self._proc)
        return acks


def read_all(path: Path, sql: str, params: Sequence[Any] = (),
             row: Callable[[tuple[Any, ...]], Any] | None = None) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [row(r) for r in rows] if row else rows
