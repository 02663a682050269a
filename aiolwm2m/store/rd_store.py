"""Where the Resource Directory keeps its registrations: the interface, and the in-memory
implementation (the reference of the contract in tests/store/test_rd_contract.py, and the
index the SQLite store keeps in front of its table).

Reads are synchronous: the directory indexes every registration in memory anyway, and the
store's own map is what a restart reloads. Writes come in the ``*_nowait`` form of the
registration store (see :class:`aiolwm2m.store.interfaces.RegistrationStore`): the change
is visible at once and durable when the returned commit completes.
"""

from __future__ import annotations

from typing import Protocol

from .interfaces import Commit
from .rd_records import RdRegistration


class RdStore(Protocol):
    def put_nowait(self, registration: RdRegistration) -> Commit:
        """Store ``registration``, replacing the one with the same id."""

    def remove_nowait(self, registration_id: str) -> tuple[RdRegistration | None, Commit]:
        """Forget a registration; returns it (None if unknown, with no commit)."""

    async def put(self, registration: RdRegistration) -> None: ...

    async def remove(self, registration_id: str) -> RdRegistration | None: ...

    def get(self, registration_id: str) -> RdRegistration | None: ...

    def all(self) -> list[RdRegistration]:
        """Every registration, oldest first (by ``sequence``)."""

    def count(self) -> int: ...


class MemoryRdStore:
    def __init__(self) -> None:
        self._by_id: dict[str, RdRegistration] = {}

    def _put(self, registration: RdRegistration) -> None:
        self._by_id[registration.id] = registration

    def _remove(self, registration_id: str) -> RdRegistration | None:
        return self._by_id.pop(registration_id, None)

    def put_nowait(self, registration: RdRegistration) -> Commit:
        self._put(registration)
        return None

    def remove_nowait(self, registration_id: str) -> tuple[RdRegistration | None, Commit]:
        return self._remove(registration_id), None

    async def put(self, registration: RdRegistration) -> None:
        commit = self.put_nowait(registration)
        if commit is not None:
            await commit

    async def remove(self, registration_id: str) -> RdRegistration | None:
        old, commit = self.remove_nowait(registration_id)
        if commit is not None:
            await commit
        return old

    def get(self, registration_id: str) -> RdRegistration | None:
        return self._by_id.get(registration_id)

    def all(self) -> list[RdRegistration]:
        return sorted(self._by_id.values(), key=lambda r: r.sequence)

    def count(self) -> int:
        return len(self._by_id)
