"""In-memory stores: the reference implementation of the contract, and the index the SQLite
stores keep in front of their files."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mypy_extensions import mypyc_attr

from .interfaces import Commit
from .records import (
    IN_FLIGHT,
    PENDING,
    Observation,
    QueuedRequest,
    Registration,
    SecurityInfo,
)


# Compiled (aiolwm2m.compiled); stores that are not may extend it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryRegistrationStore:
    def __init__(self) -> None:
        self._by_id: dict[str, Registration] = {}
        self._by_endpoint: dict[str, str] = {}

    def _add(self, registration: Registration) -> Registration | None:
        old_id = self._by_endpoint.get(registration.endpoint)
        old = self._by_id.pop(old_id, None) if old_id is not None else None
        self._by_id[registration.id] = registration
        self._by_endpoint[registration.endpoint] = registration.id
        return old

    def _update(self, registration: Registration) -> None:
        if registration.id not in self._by_id:
            raise KeyError(registration.id)
        self._by_id[registration.id] = registration

    def _remove(self, registration_id: str) -> Registration | None:
        reg = self._by_id.pop(registration_id, None)
        if reg is not None and self._by_endpoint.get(reg.endpoint) == registration_id:
            del self._by_endpoint[reg.endpoint]
        return reg

    def add_nowait(self, registration: Registration) -> tuple[Registration | None, Commit]:
        return self._add(registration), None

    def update_nowait(self, registration: Registration) -> Commit:
        self._update(registration)
        return None

    def remove_nowait(self, registration_id: str) -> tuple[Registration | None, Commit]:
        return self._remove(registration_id), None

    async def add(self, registration: Registration) -> Registration | None:
        old, commit = self.add_nowait(registration)
        if commit is not None:
            await commit
        return old

    async def update(self, registration: Registration) -> None:
        commit = self.update_nowait(registration)
        if commit is not None:
            await commit

    async def remove(self, registration_id: str) -> Registration | None:
        old, commit = self.remove_nowait(registration_id)
        if commit is not None:
            await commit
        return old

    async def get(self, registration_id: str) -> Registration | None:
        return self._by_id.get(registration_id)

    async def get_by_endpoint(self, endpoint: str) -> Registration | None:
        rid = self._by_endpoint.get(endpoint)
        return self._by_id.get(rid) if rid is not None else None

    async def all(self) -> list[Registration]:
        return list(self._by_id.values())

    async def count(self) -> int:
        return len(self._by_id)


# Compiled; the Redis stores (not compiled) extend it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryObservationStore:
    def __init__(self) -> None:
        self._by_token: dict[bytes, Observation] = {}
        self._by_registration: dict[str, dict[bytes, Observation]] = {}

    def _add(self, observation: Observation) -> None:
        self._remove(observation.token)
        self._by_token[observation.token] = observation
        self._by_registration.setdefault(observation.registration_id, {})[
            observation.token] = observation

    def _remove(self, token: bytes) -> Observation | None:
        obs = self._by_token.pop(token, None)
        if obs is not None:
            group = self._by_registration.get(obs.registration_id)
            if group is not None:
                group.pop(token, None)
                if not group:
                    del self._by_registration[obs.registration_id]
        return obs

    def _remove_for_registration(self, registration_id: str) -> list[Observation]:
        group = self._by_registration.pop(registration_id, {})
        for token in group:
            self._by_token.pop(token, None)
        return list(group.values())

    async def add(self, observation: Observation) -> None:
        self._add(observation)

    async def remove(self, token: bytes) -> Observation | None:
        return self._remove(token)

    async def get(self, token: bytes) -> Observation | None:
        return self._by_token.get(token)

    async def for_registration(self, registration_id: str) -> list[Observation]:
        return list(self._by_registration.get(registration_id, {}).values())

    async def remove_for_registration(self, registration_id: str) -> list[Observation]:
        return self._remove_for_registration(registration_id)

    async def all(self) -> list[Observation]:
        return list(self._by_token.values())


# Compiled; the Redis stores (not compiled) extend it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryQueueStore:
    def __init__(self) -> None:
        self._by_id: dict[str, QueuedRequest] = {}
        self._pending: dict[str, dict[str, QueuedRequest]] = {}
        self._sequence = 0

    def _push(self, request: QueuedRequest) -> QueuedRequest:
        self._sequence += 1
        request = replace(request, sequence=self._sequence)
        self._by_id[request.id] = request
        if request.state == PENDING:
            self._pending.setdefault(request.endpoint, {})[request.id] = request
        return request

    def _finish(self, request_id: str, state: str, result: dict[str, object] | None,
                at: float) -> QueuedRequest | None:
        req = self._by_id.get(request_id)
        if req is None:
            return None
        done = replace(req, state=state, result=result, finished_at=at)
        self._by_id[request_id] = done
        self._unpend(req)
        return done

    def _start(self, request_id: str, at: float) -> QueuedRequest | None:
        req = self._by_id.get(request_id)
        if req is None or req.state != PENDING:
            return None
        started = replace(req, state=IN_FLIGHT, started_at=at)
        self._by_id[request_id] = started
        self._unpend(req)
        return started

    def _unpend(self, req: QueuedRequest) -> None:
        group = self._pending.get(req.endpoint)
        if group is not None:
            group.pop(req.id, None)
            if not group:
                del self._pending[req.endpoint]

    def _purge(self, before: float) -> list[str]:
        gone = [r.id for r in self._by_id.values()
                if r.state != PENDING and r.finished_at is not None and r.finished_at < before]
        for rid in gone:
            del self._by_id[rid]
        return gone

    async def push(self, request: QueuedRequest) -> None:
        self._push(request)

    async def pending(self, endpoint: str) -> list[QueuedRequest]:
        return sorted(self._pending.get(endpoint, {}).values(), key=lambda r: r.sequence)

    async def finish(self, request_id: str, state: str, result: dict[str, object] | None,
                     at: float) -> QueuedRequest | None:
        return self._finish(request_id, state, result, at)

    async def start(self, request_id: str, at: float) -> QueuedRequest | None:
        return self._start(request_id, at)

    async def in_flight(self) -> list[QueuedRequest]:
        return sorted((r for r in self._by_id.values() if r.state == IN_FLIGHT),
                      key=lambda r: r.sequence)

    async def get(self, request_id: str) -> QueuedRequest | None:
        return self._by_id.get(request_id)

    async def expired(self, now: float) -> list[QueuedRequest]:
        return sorted((r for group in self._pending.values() for r in group.values()
                       if r.expires_at <= now), key=lambda r: r.sequence)

    async def purge_finished(self, before: float) -> int:
        return len(self._purge(before))

    async def depth(self) -> int:
        return sum(len(g) for g in self._pending.values())


# Compiled; the Redis stores (not compiled) extend it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemorySecurityStore:
    def __init__(self) -> None:
        self._by_endpoint: dict[str, SecurityInfo] = {}
        self._by_psk: dict[bytes, str] = {}
        self._by_rpk: dict[bytes, str] = {}
        self._by_x509: dict[str, str] = {}

    def _indexes(self, info: SecurityInfo) -> list[tuple[dict[Any, str], Any]]:
        out: list[tuple[dict[Any, str], Any]] = []
        if info.psk_identity is not None:
            out.append((self._by_psk, info.psk_identity))
        if info.rpk_public_key is not None:
            out.append((self._by_rpk, info.rpk_public_key))
        if info.x509_identity is not None:
            out.append((self._by_x509, info.x509_identity))
        return out

    def _put(self, info: SecurityInfo) -> SecurityInfo | None:
        for index, key in self._indexes(info):
            owner = index.get(key)
            if owner is not None and owner != info.endpoint:
                raise ValueError(f"those credentials already belong to endpoint {owner!r}")
        old = self._remove(info.endpoint)
        self._by_endpoint[info.endpoint] = info
        for index, key in self._indexes(info):
            index[key] = info.endpoint
        return old

    def _remove(self, endpoint: str) -> SecurityInfo | None:
        old = self._by_endpoint.pop(endpoint, None)
        if old is not None:
            for index, key in self._indexes(old):
                if index.get(key) == endpoint:
                    del index[key]
        return old

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        return self._put(info)

    async def remove(self, endpoint: str) -> SecurityInfo | None:
        return self._remove(endpoint)

    async def all(self) -> list[SecurityInfo]:
        return sorted(self._by_endpoint.values(), key=lambda i: i.endpoint)

    def get(self, endpoint: str) -> SecurityInfo | None:
        return self._by_endpoint.get(endpoint)

    def find_psk(self, identity: bytes) -> SecurityInfo | None:
        ep = self._by_psk.get(identity)
        return self._by_endpoint.get(ep) if ep is not None else None

    def find_rpk(self, public_key: bytes) -> SecurityInfo | None:
        ep = self._by_rpk.get(public_key)
        return self._by_endpoint.get(ep) if ep is not None else None

    def find_x509(self, name: str) -> SecurityInfo | None:
        ep = self._by_x509.get(name)
        return self._by_endpoint.get(ep) if ep is not None else None


class MemoryStores:
    def __init__(self) -> None:
        self.registrations = MemoryRegistrationStore()
        self.observations = MemoryObservationStore()
        self.queue = MemoryQueueStore()
        self.security = MemorySecurityStore()

    async def close(self) -> None:
        return None
