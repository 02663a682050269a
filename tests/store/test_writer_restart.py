"""The SQLite writer process dies (SIGKILL): it is reaped and restarted, with a back-off while
it keeps dying, and nothing it acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from aiolwm2m.store.sqlite_writer import (
    WRITER_OK,
    WRITER_RESTARTING,
    SQLiteWriter,
    WriterFailed,
)

SCHEMA = ["CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY)"]
INSERT = "INSERT OR REPLACE INTO t VALUES (?)"


def process_state(pid: int) -> str | None:
    """The State line of /proc/<pid>/status ("Z (zombie)"...), None once reaped."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("State:"))


def rows(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")]


async def until_state(writer: SQLiteWriter, state: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while writer.state != state:
            await asyncio.sleep(0.005)


async def kill(writer: SQLiteWriter) -> int:
    pid = writer.pid
    os.kill(pid, signal.SIGKILL)
    await until_state(writer, WRITER_RESTARTING)
    return pid


async def test_restarts_after_sigkill_reaps_and_keeps_acknowledged_writes(tmp_path: Path
                                                                          ) -> None:
    db = tmp_path / "w.sqlite3"
    writer = SQLiteWriter(db, schema=SCHEMA)
    try:
        await asyncio.gather(*(writer.submit([(INSERT, (k,))]) for k in range(100)))
        dead = await kill(writer)
        # Submitted while it restarts: held for the next child, not failed.
        held = writer.submit([(INSERT, (1000,))])
        assert writer.retry_after() > 0
        await asyncio.wait_for(held, 10)
        assert writer.state == WRITER_OK and writer.restarts == 1
        assert writer.pid != dead
        assert process_state(dead) is None  # reaped, not a zombie
        await writer.submit([(INSERT, (1001,))])
        assert rows(db) == [*range(100), 1000, 1001]
    finally:
        await writer.aclose()
    assert process_state(writer.pid) is None


async def test_writes_in_flight_at_the_death_fail(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "w.sqlite3", schema=SCHEMA)
    try:
        await writer.submit([(INSERT, (1,))])
        os.kill(writer.pid, signal.SIGKILL)
        # Handed to the dead child (or queued on its pipe): never acknowledged.
        in_flight = writer.submit([(INSERT, (2,))])
        with pytest.raises(WriterFailed):
            await asyncio.wait_for(in_flight, 10)
        await until_state(writer, WRITER_OK)
        await writer.submit([(INSERT, (3,))])
    finally:
        await writer.aclose()


async def test_back_off_doubles_while_it_keeps_dying(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "w.sqlite3", schema=SCHEMA, restart_delay_min=0.05,
                          restart_delay_max=0.2, stable_after=60.0)
    try:
        delays = []
        for _ in range(4):
            await kill(writer)
            delays.append(writer.restart_delay)
            await until_state(writer, WRITER_OK)
        assert delays == [0.05, 0.1, 0.2, 0.2]
        assert writer.restarts == 4
        # A child that lived long enough starts the back-off over.
        writer.stable_after = 0.0
        await kill(writer)
        assert writer.restart_delay == 0.05
        await until_state(writer, WRITER_OK)
    finally:
        await writer.aclose()


async def test_a_failed_restart_fails_held_writes_and_tries_again(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite3"
    writer = SQLiteWriter(db, schema=SCHEMA, restart_delay_min=0.2, restart_delay_max=0.4)
    try:
        await writer.submit([(INSERT, (1,))])
        os.kill(writer.pid, signal.SIGKILL)
        await until_state(writer, WRITER_RESTARTING)
        # The database cannot be opened any more: a directory where the file was.
        for f in tmp_path.glob("w.sqlite3*"):
            f.unlink()
        db.mkdir()
        held = writer.submit([(INSERT, (2,))])
        with pytest.raises(WriterFailed, match="restart failed"):
            await asyncio.wait_for(held, 10)
        assert writer.state == WRITER_RESTARTING
        assert writer.last_error is not None and "restart failed" in writer.last_error
        shutil.rmtree(db)
        await until_state(writer, WRITER_OK)  # the next attempt succeeds
        await writer.submit([(INSERT, (3,))])
        assert rows(db) == [3]
    finally:
        await writer.aclose()


async def test_close_while_restarting_commits_what_is_pending(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite3"
    writer = SQLiteWriter(db, schema=SCHEMA, restart_delay_min=30.0)
    await writer.submit([(INSERT, (1,))])
    await kill(writer)
    pending = writer.submit([(INSERT, (2,))])
    await writer.aclose()  # does not wait out the 30 s back-off
    await pending
    assert rows(db) == [1, 2]
    assert process_state(writer.pid) is None
