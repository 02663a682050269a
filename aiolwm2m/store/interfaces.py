"""The store interfaces. Every implementation passes tests/store/test_contract.py.

Methods that change state return once the change is durable (for stores that persist).
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from .records import Observation, QueuedRequest, Registration, SecurityInfo

#: What the ``*_nowait`` writes return: a future that completes once the write is durable,
#: or None when it already is (a store that does not persist).
Commit = asyncio.Future[None] | None


class RegistrationStore(Protocol):
    async def add(self, registration: Registration) -> Registration | None:
        """Store a new registration; returns the one it replaces (same endpoint), if any."""

    async def update(self, registration: Registration) -> None:
        """Replace the stored registration with the same id (e.g. after an Update)."""

    def add_nowait(self, registration: Registration) -> tuple[Registration | None, Commit]:
        """:meth:`add` without waiting: reads see the change at once, and it is durable
        when the commit completes. For the request path, which holds its reply until then
        rather than suspending a coroutine per request."""

    def update_nowait(self, registration: Registration) -> Commit:
        """:meth:`update` without waiting (see :meth:`add_nowait`)."""

    def remove_nowait(self, registration_id: str) -> tuple[Registration | None, Commit]:
        """:meth:`remove` without waiting (see :meth:`add_nowait`)."""

    async def remove(self, registration_id: str) -> Registration | None: ...

    async def get(self, registration_id: str) -> Registration | None: ...

    async def get_by_endpoint(self, endpoint: str) -> Registration | None: ...

    async def all(self) -> list[Registration]: ...

    async def count(self) -> int: ...


class ObservationStore(Protocol):
    async def add(self, observation: Observation) -> None: ...

    async def remove(self, token: bytes) -> Observation | None: ...

    async def get(self, token: bytes) -> Observation | None: ...

    async def for_registration(self, registration_id: str) -> list[Observation]: ...

    async def remove_for_registration(self, registration_id: str) -> list[Observation]: ...

    async def all(self) -> list[Observation]: ...


class QueueStore(Protocol):
    async def push(self, request: QueuedRequest) -> None: ...

    async def pending(self, endpoint: str) -> list[QueuedRequest]:
        """Pending requests of ``endpoint`` in the order they were pushed."""

    async def finish(self, request_id: str, state: str, result: dict[str, object] | None,
                     at: float) -> QueuedRequest | None:
        """Mark a request done, expired or failed, keeping its result for later lookup."""

    async def start(self, request_id: str, at: float) -> QueuedRequest | None:
        """Mark a pending request IN_FLIGHT (durably, when the store persists): it is about
        to be sent and must not be sent again. None when it is no longer pending."""

    async def in_flight(self) -> list[QueuedRequest]:
        """Requests marked IN_FLIGHT and not finished (after a restart: of unknown outcome)."""

    async def get(self, request_id: str) -> QueuedRequest | None: ...

    async def expired(self, now: float) -> list[QueuedRequest]:
        """Pending requests whose TTL has passed (not yet marked)."""

    async def purge_finished(self, before: float) -> int:
        """Forget finished requests older than ``before``; returns how many."""

    async def depth(self) -> int:
        """How many requests are pending across all endpoints."""


class SecurityStore(Protocol):
    """Credentials per endpoint. Changes are durable when the coroutine returns; the
    ``find_*`` lookups are synchronous because they run inside a (D)TLS handshake."""

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        """Store ``info`` (replacing the endpoint's previous credentials, returned).
        Raises ValueError when its PSK identity, key or certificate name is already bound
        to another endpoint."""

    async def remove(self, endpoint: str) -> SecurityInfo | None: ...

    async def all(self) -> list[SecurityInfo]: ...

    def get(self, endpoint: str) -> SecurityInfo | None: ...

    def find_psk(self, identity: bytes) -> SecurityInfo | None: ...

    def find_rpk(self, public_key: bytes) -> SecurityInfo | None: ...

    def find_x509(self, name: str) -> SecurityInfo | None: ...


@runtime_checkable
class StoreWriter(Protocol):
    """What the server asks of the stores' writer (SQLite's writer process, the Redis
    pipeline): whether it takes writes now ("ok"; "restarting" while the process restarts
    or Redis is unreachable), and when to try again (the Max-Age of the 5.03 meanwhile)."""

    state: str
    restarts: int
    last_error: str | None

    def retry_after(self) -> float: ...


class Stores(Protocol):
    @property
    def registrations(self) -> RegistrationStore: ...

    @property
    def observations(self) -> ObservationStore: ...

    @property
    def queue(self) -> QueueStore: ...

    @property
    def security(self) -> SecurityStore: ...

    async def close(self) -> None: ...
