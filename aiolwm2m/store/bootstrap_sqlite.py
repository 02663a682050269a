"""SQLite bootstrap stores, in the shared database file (``data_dir/aiolwm2m.sqlite3``)
with tables of their own. Reads come from the in-memory index loaded at open; writes go
through a group-committing writer and return once committed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from .bootstrap_memory import MemoryBootstrapConfigStore, MemoryBootstrapSessionStore
from .bootstrap_store import BootstrapConfigRecord, BootstrapSessionRecord
from .sqlite_writer import SQLiteWriter, read_all

BOOTSTRAP_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS bootstrap_configs (
        endpoint TEXT PRIMARY KEY, data TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS bootstrap_sessions (
        id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, sequence INTEGER NOT NULL,
        data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS bootstrap_sessions_by_endpoint "
    "ON bootstrap_sessions(endpoint)",
)


def _json(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


class SQLiteBootstrapConfigStore(MemoryBootstrapConfigStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    async def put(self, record: BootstrapConfigRecord) -> BootstrapConfigRecord | None:
        old = self._put(record)
        await self._writer.submit([("INSERT OR REPLACE INTO bootstrap_configs VALUES (?,?)",
                                    (record.endpoint, _json(record.to_dict())))])
        return old

    async def remove(self, endpoint: str) -> BootstrapConfigRecord | None:
        old = self._remove(endpoint)
        if old is not None:
            await self._writer.submit([("DELETE FROM bootstrap_configs WHERE endpoint=?",
                                        (endpoint,))])
        return old


class SQLiteBootstrapSessionStore(MemoryBootstrapSessionStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    async def save(self, session: BootstrapSessionRecord) -> None:
        self._save(session)
        await self._writer.submit([("INSERT OR REPLACE INTO bootstrap_sessions "
                                    "VALUES (?,?,?,?)",
                                    (session.id, session.endpoint, self._order[session.id],
                                     _json(session.to_dict())))])

    async def purge(self, before: float) -> int:
        gone = self._purge(before)
        if gone:
            await self._writer.submit([("DELETE FROM bootstrap_sessions WHERE id=?", (sid,))
                                       for sid in gone])
        return len(gone)

    async def trim(self, state: str, keep: int) -> int:
        gone = self._trim(state, keep)
        if gone:
            await self._writer.submit([("DELETE FROM bootstrap_sessions WHERE id=?", (sid,))
                                       for sid in gone])
        return len(gone)


class SQLiteBootstrapStores:
    def __init__(self, writer: SQLiteWriter) -> None:
        self.writer = writer
        self.configs = SQLiteBootstrapConfigStore(writer)
        self.sessions = SQLiteBootstrapSessionStore(writer)

    @classmethod
    async def open(cls, path: Path | str, *, synchronous: str = "FULL"
                   ) -> SQLiteBootstrapStores:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = SQLiteWriter(path, synchronous=synchronous, schema=BOOTSTRAP_SCHEMA)
        stores = cls(writer)
        await asyncio.get_running_loop().run_in_executor(None, stores._load)
        return stores

    def _load(self) -> None:
        path = self.writer.path
        for (data,) in read_all(path, "SELECT data FROM bootstrap_configs"):
            self.configs._put(BootstrapConfigRecord.from_dict(json.loads(data)))
        sessions = self.sessions
        for seq, data in read_all(path, "SELECT sequence, data FROM bootstrap_sessions "
                                        "ORDER BY sequence"):
            record = BootstrapSessionRecord.from_dict(json.loads(data))
            sessions._by_id[record.id] = record
            sessions._order[record.id] = int(seq)
            sessions._sequence = max(sessions._sequence, int(seq))

    async def close(self) -> None:
        await self.writer.aclose()
