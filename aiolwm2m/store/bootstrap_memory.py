"""In-memory bootstrap stores: the reference for the contract, and the index the SQLite
stores keep in front of their tables."""

from __future__ import annotations

from .bootstrap_store import RUNNING, BootstrapConfigRecord, BootstrapSessionRecord


class MemoryBootstrapConfigStore:
    def __init__(self) -> None:
        self._by_endpoint: dict[str, BootstrapConfigRecord] = {}

    def _put(self, record: BootstrapConfigRecord) -> BootstrapConfigRecord | None:
        old = self._by_endpoint.get(record.endpoint)
        self._by_endpoint[record.endpoint] = record
        return old

    def _remove(self, endpoint: str) -> BootstrapConfigRecord | None:
        return self._by_endpoint.pop(endpoint, None)

    async def put(self, record: BootstrapConfigRecord) -> BootstrapConfigRecord | None:
        return self._put(record)

    async def get(self, endpoint: str) -> BootstrapConfigRecord | None:
        return self._by_endpoint.get(endpoint)

    async def remove(self, endpoint: str) -> BootstrapConfigRecord | None:
        return self._remove(endpoint)

    async def all(self) -> list[BootstrapConfigRecord]:
        return [self._by_endpoint[k] for k in sorted(self._by_endpoint)]


class MemoryBootstrapSessionStore:
    def __init__(self) -> None:
        self._by_id: dict[str, BootstrapSessionRecord] = {}
        self._order: dict[str, int] = {}
        self._sequence = 0

    def _save(self, session: BootstrapSessionRecord) -> None:
        if session.id not in self._order:
            self._sequence += 1
            self._order[session.id] = self._sequence
        self._by_id[session.id] = session

    def _purge(self, before: float) -> list[str]:
        gone = [s.id for s in self._by_id.values() if s.state != RUNNING
                and s.finished_at is not None and s.finished_at < before]
        for sid in gone:
            del self._by_id[sid]
            del self._order[sid]
        return gone

    def _trim(self, state: str, keep: int) -> list[str]:
        in_state = [s for s in self._sorted() if s.state == state]
        gone = [s.id for s in in_state[:max(0, len(in_state) - keep)]]
        for sid in gone:
            del self._by_id[sid]
            del self._order[sid]
        return gone

    def _sorted(self) -> list[BootstrapSessionRecord]:
        return sorted(self._by_id.values(), key=lambda s: (s.started_at, self._order[s.id]))

    async def save(self, session: BootstrapSessionRecord) -> None:
        self._save(session)

    async def get(self, session_id: str) -> BootstrapSessionRecord | None:
        return self._by_id.get(session_id)

    async def for_endpoint(self, endpoint: str) -> list[BootstrapSessionRecord]:
        return [s for s in self._sorted() if s.endpoint == endpoint]

    async def recent(self, limit: int = 100) -> list[BootstrapSessionRecord]:
        return list(reversed(self._sorted()))[:limit]

    async def purge(self, before: float) -> int:
        return len(self._purge(before))

    async def trim(self, state: str, keep: int) -> int:
        return len(self._trim(state, keep))


class MemoryBootstrapStores:
    def __init__(self) -> None:
        self.configs = MemoryBootstrapConfigStore()
        self.sessions = MemoryBootstrapSessionStore()

    async def close(self) -> None:
        return None
