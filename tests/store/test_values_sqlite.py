"""The SQLite values store's own bounds: a file and writer of its own, queries that would
scan too much refused, a bounded buffer while the writer lags or restarts."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sqlite3
from pathlib import Path
from typing import NamedTuple

import pytest

from aiolwm2m.history.samples import ValueSample
from aiolwm2m.history.sqlite import FILE_NAME, SQLiteValueStore
from aiolwm2m.history.store import QueryTooBroad, Retention
from aiolwm2m.store.sqlite import SQLiteStores
from aiolwm2m.store.sqlite_writer import WRITER_OK


def sample(path: str, at: float, value: int = 1, ep: str = "dev-1") -> ValueSample:
    return ValueSample(ep, path, at, "Integer", value, "observe")


def record(store: SQLiteValueStore, samples: list[ValueSample]) -> None:
    for s in samples:
        store.record(s.endpoint, s.time, s.source, [(s.path, s.type, s.value)])


async def test_values_have_a_database_and_writer_of_their_own(tmp_path: Path) -> None:
    stores = await SQLiteStores.open(tmp_path / "aiolwm2m.sqlite3")
    values = await SQLiteValueStore.open(tmp_path)
    try:
        assert values.writer is not stores.writer and values.writer.pid != stores.writer.pid
        record(values, [sample("/3/0/9", 1)])
        await values.flush()
        tables = {r[0] for r in sqlite3.connect(tmp_path / "aiolwm2m.sqlite3").execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        assert "value_groups" not in tables
        count = sqlite3.connect(tmp_path / FILE_NAME).execute(
            "SELECT sum(count) FROM value_groups").fetchone()[0]
        assert count == 1
    finally:
        await values.close()
        await stores.close()


async def test_a_query_that_would_scan_too_much_is_refused(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path)
    try:
        record(store, [sample("/3/0/13", 0.5, 7)])  # once, before a long busy history
        record(store, [sample(f"/3303/{i % 50}/5700", float(i + 1), i) for i in range(20_000)])
        await store.flush()
        store.query_budget = 50_000
        with pytest.raises(QueryTooBroad, match="narrow"):
            await store.history("dev-1", "/3/0/13", limit=10)
        # Narrowed to the time it was recorded in, it is found.
        got = await store.history("dev-1", "/3/0/13", until=1.0, limit=10)
        assert [s.value for s in got] == [7]
        # Paths recorded as often as the others are picked out of the device's timeline,
        # newest first: cheap whatever the history, one path or a prefix of many.
        got = await store.history("dev-1", "/3303/7/5700", limit=10)
        assert [s.value for s in got] == list(range(19_507, 20_000, 50))[-10:]
        got = await store.history("dev-1", "/3303", limit=10)
        assert [s.value for s in got] == list(range(19_990, 20_000))
        assert len(await store.latest("dev-1")) == 51
    finally:
        await store.close()


async def test_a_file_with_a_row_per_value_is_carried_over(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / FILE_NAME)
    db.execute("""CREATE TABLE value_history (
        seq INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, path TEXT NOT NULL,
        time REAL NOT NULL, type TEXT NOT NULL, value, source TEXT NOT NULL)""")
    db.execute("CREATE INDEX value_history_by_path ON value_history(endpoint, path, time)")
    db.executemany("INSERT INTO value_history VALUES (?, 'dev-1', ?, ?, ?, ?, 'read')", [
        (1, "/3/0/9", 5.0, "Integer", 80), (2, "/19/0/0/0", 6.0, "Opaque", b"\x00\xff"),
        (3, "/1/0/6", 6.0, "Boolean", 1), (4, "/3303/0/5700", 7.0, "Float", 21.5),
        (5, "/3303/0/5701", 7.0, "Float", None)])  # how SQLite kept a NaN
    db.commit()
    db.close()
    store = await SQLiteValueStore.open(tmp_path)
    try:
        got = await store.history("dev-1")
        assert [(s.path, s.time, s.value, s.seq) for s in got[:4]] == [
            ("/3/0/9", 5.0, 80, 1), ("/19/0/0/0", 6.0, b"\x00\xff", 2),
            ("/1/0/6", 6.0, True, 3), ("/3303/0/5700", 7.0, 21.5, 4)]
        assert got[4].seq == 5 and math.isnan(got[4].value)  # type: ignore[arg-type]
        record(store, [sample("/3/0/9", 8.0, 81)])
        assert [s.seq for s in await store.history("dev-1", "/3/0/9")] == [1, 6]
        names = {r[0] for r in sqlite3.connect(tmp_path / FILE_NAME).execute(
            "SELECT name FROM sqlite_master")}
        assert "value_history" not in names and "value_history_by_path" not in names
        assert "value_groups_timeline" in names
    finally:
        await store.close()
    # Opened again, nothing is carried over twice.
    store = await SQLiteValueStore.open(tmp_path)
    try:
        assert [s.seq for s in await store.history("dev-1")] == [1, 2, 3, 4, 5, 6]
    finally:
        await store.close()


async def test_retention_by_size_drops_whole_groups(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path, retention=Retention(max_samples=5))
    try:
        for t in range(4):  # groups of three values: seqs 1-3, 4-6, 7-9, 10-12
            store.record("dev-1", float(t), "read",
                         [(f"/3/0/{r}", "Integer", t * 10 + r) for r in range(3)])
        await store.prune(10.0)
        # The newest five are seqs 8-12: the group holding seq 7 goes whole.
        assert [s.seq for s in await store.history("dev-1")] == [10, 11, 12]
    finally:
        await store.close()


async def test_a_query_decoding_too_much_is_refused(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path)
    try:
        for t in range(200):
            store.record("dev-1", float(t), "read",
                         [(f"/3303/{i}/5700", "Float", float(i)) for i in range(50)])
        await store.flush()
        store.decode_budget = 1_000
        with pytest.raises(QueryTooBroad, match="narrow"):
            await store.history("dev-1", "/3303", limit=5_000)
        assert len(await store.history("dev-1", "/3303", limit=500)) == 500
    finally:
        await store.close()


async def test_values_given_as_named_tuples(tmp_path: Path) -> None:
    class Value(NamedTuple):
        path: str
        type: str
        value: int

    store = await SQLiteValueStore.open(tmp_path)
    try:
        store.record("dev-1", 1.0, "read", [Value("/3/0/9", "Integer", 80)])
        await store.flush()
        assert store.stats.dropped == 0
        assert [s.value for s in await store.history("dev-1")] == [80]
    finally:
        await store.close()


async def test_an_unsigned_integer_beyond_sqlite_integers(tmp_path: Path) -> None:
    # SQLite's INTEGER is signed: such a value once failed its batch, every device's values.
    store = await SQLiteValueStore.open(tmp_path)
    try:
        store.record("dev-1", 1.0, "read", [("/3/0/9", "Integer", 80)])
        store.record("dev-2", 1.0, "read", [("/10/0/1", "Unsigned Integer", 2**64 - 1)])
        await store.flush()
        assert store.stats.dropped == 0
        assert [s.value for s in await store.latest("dev-1")] == [80]
        assert [s.value for s in await store.latest("dev-2")] == [2**64 - 1]
        assert [s.value for s in await store.history("dev-2")] == [2**64 - 1]
    finally:
        await store.close()


async def test_the_buffer_is_bounded(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path, max_buffered=100, flush_interval=5)
    try:
        record(store, [sample("/3/0/9", float(i), i) for i in range(150)])
        assert store.stats.dropped == 50 and store.stats.recorded == 100
        await store.flush()
        record(store, [sample("/3/0/9", 200.0, 200)])  # room again once written
        assert store.stats.dropped == 50
        assert len(await store.history("dev-1")) == 101
    finally:
        await store.close()


async def test_values_recorded_while_the_writer_restarts(tmp_path: Path) -> None:
    store = await SQLiteValueStore.open(tmp_path)
    try:
        record(store, [sample("/3/0/9", 1.0, 1)])
        await store.flush()
        os.kill(store.writer.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            while store.writer.state == WRITER_OK:
                await asyncio.sleep(0.01)
        record(store, [sample("/3/0/9", 2.0, 2)])
        await store.flush()  # waits for the new writer; the value is written or counted
        async with asyncio.timeout(10):
            while store.writer.state != WRITER_OK:
                await asyncio.sleep(0.01)
        record(store, [sample("/3/0/9", 3.0, 3)])
        await store.flush()
        kept = [s.value for s in await store.history("dev-1")]
        assert kept[0] == 1 and kept[-1] == 3
        assert len(kept) + store.stats.dropped == 3
    finally:
        await store.close()
