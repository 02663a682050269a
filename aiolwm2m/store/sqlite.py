"""SQLite stores: the default, embedded and durable. Reads come from an in-memory index
loaded at open; writes go through the group-committing writer and return once committed."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from .interfaces import Commit
from .memory import (
    MemoryObservationStore,
    MemoryQueueStore,
    MemoryRegistrationStore,
    MemorySecurityStore,
)
from .records import (
    IN_FLIGHT,
    LEGACY_PSK_PREFIX,
    PENDING,
    Observation,
    QueuedRequest,
    Registration,
    SecurityInfo,
    registration_from_json,
    registration_row,
    unsettled_legacy_identity,
)
from .sqlite_writer import SQLiteWriter, json_last, read_all

log = logging.getLogger(__name__)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS registrations (
        id TEXT PRIMARY KEY, endpoint TEXT NOT NULL UNIQUE, data TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS observations (
        token BLOB PRIMARY KEY, registration_id TEXT NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS observations_by_registration ON observations(registration_id)",
    """CREATE TABLE IF NOT EXISTS queued_requests (
        id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, sequence INTEGER NOT NULL,
        state TEXT NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS queued_by_endpoint ON queued_requests(endpoint, state)",
    """CREATE TABLE IF NOT EXISTS security (
        endpoint TEXT PRIMARY KEY, data TEXT NOT NULL)""",
)


def _json(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


# A new registration of a known endpoint replaces the old row through the UNIQUE(endpoint)
# conflict of INSERT OR REPLACE, so a burst of Registers is one run of one statement.
UPSERT_REGISTRATION = json_last("INSERT OR REPLACE INTO registrations VALUES (?,?,?)")
DELETE_REGISTRATION = "DELETE FROM registrations WHERE id=?"


class SQLiteRegistrationStore(MemoryRegistrationStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    def add_nowait(self, registration: Registration) -> tuple[Registration | None, Commit]:
        old = self._add(registration)
        return old, self._writer.submit([(UPSERT_REGISTRATION, (
            registration.id, registration.endpoint, registration_row(registration)))])

    def update_nowait(self, registration: Registration) -> Commit:
        self._update(registration)
        return self._writer.submit([(UPSERT_REGISTRATION, (
            registration.id, registration.endpoint, registration_row(registration)))])

    def remove_nowait(self, registration_id: str) -> tuple[Registration | None, Commit]:
        reg = self._remove(registration_id)
        if reg is None:
            return None, None
        return reg, self._writer.submit([(DELETE_REGISTRATION, (registration_id,))])


class SQLiteObservationStore(MemoryObservationStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    async def add(self, observation: Observation) -> None:
        self._add(observation)
        await self._writer.submit([("INSERT OR REPLACE INTO observations VALUES (?,?,?)",
                                    (observation.token, observation.registration_id,
                                     _json(observation.to_dict())))])

    async def remove(self, token: bytes) -> Observation | None:
        obs = self._remove(token)
        if obs is not None:
            await self._writer.submit([("DELETE FROM observations WHERE token=?", (token,))])
        return obs

    async def remove_for_registration(self, registration_id: str) -> list[Observation]:
        gone = self._remove_for_registration(registration_id)
        if gone:
            await self._writer.submit([("DELETE FROM observations WHERE registration_id=?",
                                        (registration_id,))])
        return gone


class SQLiteQueueStore(MemoryQueueStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    def _row(self, r: QueuedRequest) -> tuple[str, tuple[Any, ...]]:
        return ("INSERT OR REPLACE INTO queued_requests VALUES (?,?,?,?,?)",
                (r.id, r.endpoint, r.sequence, r.state, _json(r.to_dict())))

    async def push(self, request: QueuedRequest) -> None:
        stored = self._push(request)
        await self._writer.submit([self._row(stored)])

    async def finish(self, request_id: str, state: str, result: dict[str, object] | None,
                     at: float) -> QueuedRequest | None:
        done = self._finish(request_id, state, result, at)
        if done is not None:
            await self._writer.submit([self._row(done)])
        return done

    async def start(self, request_id: str, at: float) -> QueuedRequest | None:
        # The mark must be durable before the request leaves, and the request stays
        # pending (here and to a new attempt) when the mark cannot be committed.
        req = self._by_id.get(request_id)
        if req is None or req.state != PENDING:
            return None
        await self._writer.submit([self._row(replace(req, state=IN_FLIGHT, started_at=at))])
        return self._start(request_id, at)

    async def purge_finished(self, before: float) -> int:
        gone = self._purge(before)
        if gone:
            await self._writer.submit([("DELETE FROM queued_requests WHERE id=?", (rid,))
                                       for rid in gone])
        return len(gone)


class SQLiteSecurityStore(MemorySecurityStore):
    def __init__(self, writer: SQLiteWriter) -> None:
        super().__init__()
        self._writer = writer

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        old = self._put(info)
        await self._writer.submit([("INSERT OR REPLACE INTO security VALUES (?,?)",
                                    (info.endpoint, _json(info.to_dict())))])
        return old

    async def remove(self, endpoint: str) -> SecurityInfo | None:
        old = self._remove(endpoint)
        if old is not None:
            await self._writer.submit([("DELETE FROM security WHERE endpoint=?", (endpoint,))])
        return old


class SQLiteStores:
    """All stores in one database file (``aiolwm2m.sqlite3`` under the data directory)."""

    def __init__(self, writer: SQLiteWriter) -> None:
        self.writer = writer
        self.registrations = SQLiteRegistrationStore(writer)
        self.observations = SQLiteObservationStore(writer)
        self.queue = SQLiteQueueStore(writer)
        self.security = SQLiteSecurityStore(writer)

    @classmethod
    async def open(cls, path: Path | str, *, synchronous: str = "FULL") -> SQLiteStores:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = SQLiteWriter(path, synchronous=synchronous, schema=SCHEMA)
        stores = cls(writer)
        settled, dropped = await asyncio.get_running_loop().run_in_executor(None, stores._load)
        if settled or dropped:
            # Written in the current form, so the next start does not depend on credentials
            # that may have changed by then.
            await writer.submit(
                [(UPSERT_REGISTRATION, (r.id, r.endpoint, registration_row(r)))
                 for r in settled] + [(DELETE_REGISTRATION, (r.id,)) for r in dropped])
        return stores

    def _load(self) -> tuple[list[Registration], list[Registration]]:
        """Read everything into the in-memory indexes. Returns the registrations an earlier
        version stored with an ambiguous PSK identity: those the endpoint's credentials
        settled, and those they did not (dropped: their clients' next Update gets 4.04 and
        they register again, over a session that names their identity exactly)."""
        path = self.writer.path
        for (data,) in read_all(path, "SELECT data FROM security"):
            self.security._put(SecurityInfo.from_dict(json.loads(data)))
        settled: list[Registration] = []
        dropped: list[Registration] = []
        for (data,) in read_all(path, "SELECT data FROM registrations"):
            reg = registration_from_json(data)
            if reg.identity is not None and reg.identity.startswith(LEGACY_PSK_PREFIX):
                identity = unsettled_legacy_identity(reg, self.security.get(reg.endpoint))
                if identity is None:
                    log.warning("dropped registration %s of %s: its stored PSK identity "
                                "%r fits several identities and the endpoint's credentials "
                                "do not settle which", reg.id, reg.endpoint, reg.identity)
                    dropped.append(reg)
                    continue
                reg = reg.with_changes(identity=identity)
                settled.append(reg)
            self.registrations._add(reg)
        for (data,) in read_all(path, "SELECT data FROM observations"):
            self.observations._add(Observation.from_dict(json.loads(data)))
        q = self.queue
        for (data,) in read_all(path, "SELECT data FROM queued_requests ORDER BY sequence"):
            r = QueuedRequest.from_dict(json.loads(data))
            q._by_id[r.id] = r
            if r.state == PENDING:
                q._pending.setdefault(r.endpoint, {})[r.id] = r
            q._sequence = max(q._sequence, r.sequence)
        return settled, dropped

    async def close(self) -> None:
        await self.writer.aclose()
