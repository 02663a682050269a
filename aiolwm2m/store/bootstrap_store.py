"""The bootstrap server's stores: per-endpoint configurations and bootstrap sessions.

Both hold plain records: a configuration is the JSON-ready dict of
:class:`aiolwm2m.bootstrap.configuration.EndpointConfig` (the store does not interpret it),
a session is a :class:`BootstrapSessionRecord`. Every implementation passes
``tests/store/test_bootstrap_contract.py``; methods that change state return once the change
is durable (for stores that persist).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
#: A Bootstrap-Request the server turned down (``reason`` says why); no session ran.
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class BootstrapConfigRecord:
    endpoint: str
    config: dict[str, Any]
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"ep": self.endpoint, "config": self.config, "at": self.updated_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BootstrapConfigRecord:
        return cls(d["ep"], d["config"], float(d["at"]))


@dataclass(frozen=True, slots=True)
class BootstrapSessionRecord:
    id: str
    endpoint: str
    address: str
    started_at: float
    state: str = RUNNING
    server_initiated: bool = False
    requests: int = 0
    finished_at: float | None = None
    error: str | None = None
    #: Why a refused request was refused: a short stable token (``bootstrap-nosec``...).
    reason: str | None = None

    def with_changes(self, **changes: Any) -> BootstrapSessionRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ep": self.endpoint, "addr": self.address,
                "started": self.started_at, "state": self.state,
                "si": self.server_initiated, "requests": self.requests,
                "finished": self.finished_at, "error": self.error, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BootstrapSessionRecord:
        return cls(d["id"], d["ep"], d["addr"], float(d["started"]), d["state"],
                   bool(d["si"]), int(d["requests"]), d["finished"], d["error"],
                   d.get("reason"))


class BootstrapConfigStore(Protocol):
    async def put(self, record: BootstrapConfigRecord) -> BootstrapConfigRecord | None:
        """Store the configuration of ``record.endpoint``; returns the one it replaces."""

    async def get(self, endpoint: str) -> BootstrapConfigRecord | None: ...

    async def remove(self, endpoint: str) -> BootstrapConfigRecord | None: ...

    async def all(self) -> list[BootstrapConfigRecord]:
        """Every configuration, ordered by endpoint name."""


class BootstrapSessionStore(Protocol):
    async def save(self, session: BootstrapSessionRecord) -> None:
        """Insert a session, or replace the stored one with the same id."""

    async def get(self, session_id: str) -> BootstrapSessionRecord | None: ...

    async def for_endpoint(self, endpoint: str) -> list[BootstrapSessionRecord]:
        """The endpoint's sessions, oldest first."""

    async def recent(self, limit: int = 100) -> list[BootstrapSessionRecord]:
        """The latest sessions across endpoints, newest first."""

    async def purge(self, before: float) -> int:
        """Forget sessions that ended before ``before``; returns how many."""

    async def trim(self, state: str, keep: int) -> int:
        """Forget the oldest sessions in ``state`` beyond the newest ``keep``; returns how
        many. Bounds the records a peer can make the server write (refused requests)."""


class BootstrapStores(Protocol):
    @property
    def configs(self) -> BootstrapConfigStore: ...

    @property
    def sessions(self) -> BootstrapSessionStore: ...

    async def close(self) -> None: ...
