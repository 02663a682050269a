"""Redis stores: registrations, observations, queued requests and credentials in Redis or a
Redis Cluster (key layout: :mod:`aiolwm2m.store.redis_keys`).

As with SQLite, reads come from an in-memory index loaded at open (the request path never
waits on Redis to read), and every change goes through the group-committing
:class:`~aiolwm2m.store.redis_writer.RedisWriter`: the ``*_nowait`` writes return the
future of their loop iteration's pipeline, so Register and Update hold their reply until
Redis has the registration, without a coroutine per request.

With a node id (several nodes sharing the namespace, :mod:`aiolwm2m.cluster`) the memory
index holds only the endpoints this node owns: they are loaded at open (those whose lease
names the node) and later one by one (:meth:`RedisStores.read_endpoint`,
:meth:`RedisStores.install`) when the node takes an endpoint over, and dropped from memory
alone when another node takes it (:meth:`RedisStores.drop`). Registration writes then go
through the fenced scripts (``PUT_OWNED``, ``DELETE_OWNED``), each with a reply of its own,
so that a write refused for one endpoint fails that request alone. Credentials stay a full
copy on every node, kept fresh by the nodes' change notices.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiolwm2m.log_throttle import LogThrottle

from . import redis_scripts as scripts
from .interfaces import Commit
from .memory import (
    MemoryObservationStore,
    MemoryQueueStore,
    MemoryRegistrationStore,
    MemorySecurityStore,
)
from .records import (
    IN_FLIGHT,
    PENDING,
    Observation,
    QueuedRequest,
    Registration,
    SecurityInfo,
    registration_from_json,
    registration_to_json,
)
from .redis_connect import RedisTarget, connect
from .redis_keys import Keys, check_node_id, queue_member, slot_tag
from .redis_writer import Command, RedisWriteFailed, RedisWriter

log = logging.getLogger(__name__)
_skipped = LogThrottle(log, interval=10.0, burst=5)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
#: Keys read per pipeline while loading.
LOAD_CHUNK = 1000


#: How long a lease outlives its registration's lifetime (seconds), by default.
LEASE_GRACE = 60.0


def row_prefix(registration_id: str) -> str:
    """How a registration's row starts (its id is the first element)."""
    return _ENCODE([registration_id])[:-1] + ","


_row_prefix = row_prefix


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def quiet(fut: asyncio.Future[Any]) -> None:
    """A commit nobody waits for may fail without "exception never retrieved" noise."""
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())


class RedisRegistrationStore(MemoryRegistrationStore):
    def __init__(self, writer: RedisWriter, keys: Keys, node: str | None = None,
                 lease_grace: float = LEASE_GRACE) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys
        #: The node this store writes for (several nodes), else None.
        self.node = node
        self.lease_grace = lease_grace
        #: Several nodes: told (endpoint, node) when a Register here took the endpoint
        #: from another node, and the endpoint when a write was refused because another
        #: node holds its lease.
        self.on_taken: Callable[[str, str], None] | None = None
        self.on_lost: Callable[[str], None] | None = None

    def lease_ms(self, reg: Registration) -> int:
        return int((reg.lifetime + self.lease_grace) * 1000)

    def _owned_put(self, reg: Registration, mode: str) -> asyncio.Future[Any]:
        keys = self._keys
        row_key, expiry_key = keys.registration_keys(reg.endpoint)
        put = self._writer.call((
            "EVALSHA", scripts.PUT_OWNED.sha, 4, row_key, expiry_key, keys.lease(reg.endpoint),
            keys.endpoint(reg.endpoint, "o"), registration_to_json(reg),
            reg.updated_at + reg.lifetime, reg.endpoint, self.node, self.lease_ms(reg), mode,
            row_prefix(reg.id)))
        put.add_done_callback(functools.partial(self._put_done, reg.endpoint))
        return put

    def _put_done(self, endpoint: str, put: asyncio.Future[Any]) -> None:
        if put.cancelled():
            return
        error = put.exception()
        if error is None:
            previous = _text(put.result())
            if previous and previous != self.node and self.on_taken is not None:
                self.on_taken(endpoint, previous)
        elif (isinstance(error, RedisWriteFailed) and "NOTOWNER" in str(error)
              and self.on_lost is not None):
            self.on_lost(endpoint)

    def _put_command(self, reg: Registration) -> Command:
        row_key, expiry_key = self._keys.registration_keys(reg.endpoint)
        return ("EVALSHA", scripts.PUT_REGISTRATION.sha, 2, row_key, expiry_key,
                registration_to_json(reg), reg.updated_at + reg.lifetime, reg.endpoint)

    def _delete_commands(self, reg: Registration) -> list[Command]:
        row_key, expiry_key = self._keys.registration_keys(reg.endpoint)
        return [("EVALSHA", scripts.DELETE_REGISTRATION.sha, 2, row_key, expiry_key,
                 _row_prefix(reg.id), reg.endpoint),
                ("EVALSHA", scripts.HDEL_IF.sha, 1, self._keys.id_index(reg.id), reg.id,
                 reg.endpoint)]

    def add_nowait(self, registration: Registration) -> tuple[Registration | None, Commit]:
        old = self._add(registration)
        index: list[Command] = [("HSET", self._keys.id_index(registration.id),
                                 registration.id, registration.endpoint)]
        if old is not None and old.id != registration.id:
            # Its row was just overwritten; only its id's index entry remains.
            index.append(("EVALSHA", scripts.HDEL_IF.sha, 1, self._keys.id_index(old.id),
                          old.id, old.endpoint))
        if self.node is not None:
            put = self._owned_put(registration, "take")
            quiet(self._writer.submit(index))
            return old, put
        return old, self._writer.submit([self._put_command(registration), *index])

    def update_nowait(self, registration: Registration) -> Commit:
        self._update(registration)
        if self.node is not None:
            return self._owned_put(registration, "keep")
        return self._writer.submit((self._put_command(registration),))

    def remove_nowait(self, registration_id: str) -> tuple[Registration | None, Commit]:
        reg = self._remove(registration_id)
        if reg is None:
            return None, None
        if self.node is not None:
            row_key, expiry_key = self._keys.registration_keys(reg.endpoint)
            return reg, self._writer.submit([
                ("EVALSHA", scripts.DELETE_OWNED.sha, 3, row_key, expiry_key,
                 self._keys.lease(reg.endpoint), row_prefix(reg.id), reg.endpoint, self.node),
                ("EVALSHA", scripts.HDEL_IF.sha, 1, self._keys.id_index(reg.id), reg.id,
                 reg.endpoint)])
        return reg, self._writer.submit(self._delete_commands(reg))


class RedisObservationStore(MemoryObservationStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys

    async def add(self, observation: Observation) -> None:
        token = observation.token
        previous = self._by_token.get(token)
        self._add(observation)
        commands: list[Command] = []
        if previous is not None and previous.endpoint != observation.endpoint:
            commands.append(("HDEL", self._keys.endpoint(previous.endpoint, "o"), token.hex()))
        commands.append(("HSET", self._keys.endpoint(observation.endpoint, "o"), token.hex(),
                         _ENCODE(observation.to_dict())))
        await self._writer.submit(commands)

    async def remove(self, token: bytes) -> Observation | None:
        obs = self._remove(token)
        if obs is not None:
            await self._writer.submit(
                (("HDEL", self._keys.endpoint(obs.endpoint, "o"), token.hex()),))
        return obs

    async def remove_for_registration(self, registration_id: str) -> list[Observation]:
        gone = self._remove_for_registration(registration_id)
        if gone:
            by_endpoint: dict[str, list[str]] = defaultdict(list)
            for obs in gone:
                by_endpoint[obs.endpoint].append(obs.token.hex())
            await self._writer.submit([("HDEL", self._keys.endpoint(ep, "o"), *tokens)
                                       for ep, tokens in by_endpoint.items()])
        return gone


class RedisQueueStore(MemoryQueueStore):
    def __init__(self, writer: RedisWriter, keys: Keys, node: str | None = None) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys
        #: Several nodes: Redis holds the queues (any node may find a request by id, the
        #: node an endpoint wakes on reads its queue there), and sequence numbers follow
        #: the clock so that requests queued by different nodes keep their order.
        self.node = node

    def _put_command(self, r: QueuedRequest) -> Command:
        keys = self._keys
        return ("EVALSHA", scripts.PUT_QUEUED.sha, 2, keys.endpoint(r.endpoint, "q"),
                keys.queue_expiry(r.endpoint), r.id, _ENCODE(r.to_dict()),
                "1" if r.state == PENDING else "0", r.expires_at,
                queue_member(r.endpoint, r.id))

    async def push(self, request: QueuedRequest) -> None:
        if self.node is None:
            stored = self._push(request)
            await self._writer.submit((self._put_command(stored),))
            return
        self._sequence = max(self._sequence, int(time.time() * 1_000_000))
        stored = self._push(request)
        await self._writer.submit((self._put_command(stored),
                                   ("HSET", self._keys.queue_id_index(stored.id), stored.id,
                                    stored.endpoint)))

    def _take(self, request: QueuedRequest) -> None:
        """Hold ``request`` as Redis has it (several nodes: another node queued, sent or
        finished it)."""
        known = self._by_id.get(request.id)
        if known is not None and known.state == PENDING and request.state != PENDING:
            self._unpend(known)
        self._by_id[request.id] = request
        if request.state == PENDING:
            self._pending.setdefault(request.endpoint, {})[request.id] = request
        self._sequence = max(self._sequence, request.sequence)

    async def pending(self, endpoint: str) -> list[QueuedRequest]:
        if self.node is not None:
            # The node an endpoint wakes on sends what any node queued for it.
            stored = await self._writer.call(("HGETALL", self._keys.endpoint(endpoint, "q")))
            for value in (stored or {}).values():
                req = parse_record(QueuedRequest.from_dict, value)
                if req is not None and req.endpoint == endpoint:
                    self._take(req)
        return await super().pending(endpoint)

    async def get(self, request_id: str) -> QueuedRequest | None:
        found = self._by_id.get(request_id)
        if found is not None or self.node is None:
            return found
        endpoint = await self._writer.call(("HGET", self._keys.queue_id_index(request_id),
                                            request_id))
        if endpoint is None:
            return None
        value = await self._writer.call(("HGET", self._keys.endpoint(_text(endpoint), "q"),
                                         request_id))
        return parse_record(QueuedRequest.from_dict, value) if value else None

    async def finish(self, request_id: str, state: str, result: dict[str, object] | None,
                     at: float) -> QueuedRequest | None:
        done = self._finish(request_id, state, result, at)
        if done is not None:
            await self._writer.submit((self._put_command(done),))
        return done

    async def start(self, request_id: str, at: float) -> QueuedRequest | None:
        # Durable before the request leaves; still pending here when Redis did not take it.
        req = self._by_id.get(request_id)
        if req is None or req.state != PENDING:
            return None
        started = replace(req, state=IN_FLIGHT, started_at=at)
        if self.node is None:
            await self._writer.submit((self._put_command(started),))
            return self._start(request_id, at)
        keys = self._keys
        marked = await self._writer.call((
            "EVALSHA", scripts.START_QUEUED.sha, 2, keys.endpoint(req.endpoint, "q"),
            keys.queue_expiry(req.endpoint), req.id, _ENCODE(started.to_dict()),
            queue_member(req.endpoint, req.id)))
        if not marked:
            # Another node sent it or it finished meanwhile: not ours to send.
            self._unpend(req)
            return None
        return self._start(request_id, at)

    async def purge_finished(self, before: float) -> int:
        endpoints = {r.id: r.endpoint for r in self._by_id.values() if r.state != PENDING}
        gone = self._purge(before)
        if gone:
            by_endpoint: dict[str, list[str]] = defaultdict(list)
            for rid in gone:
                by_endpoint[endpoints[rid]].append(rid)
            commands: list[Command] = [("HDEL", self._keys.endpoint(ep, "q"), *ids)
                                       for ep, ids in by_endpoint.items()]
            if self.node is not None:
                commands += [("EVALSHA", scripts.HDEL_IF.sha, 1,
                              self._keys.queue_id_index(rid), rid, endpoints[rid])
                             for rid in gone]
            await self._writer.submit(commands)
        return len(gone)


class RedisSecurityStore(MemorySecurityStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys
        #: Several nodes: told the endpoint whose credentials this node changed (the
        #: others then read them again, :meth:`reload`).
        self.on_change: Callable[[str], None] | None = None

    async def reload(self, endpoint: str) -> None:
        """Take the endpoint's credentials as Redis holds them (another node changed
        them)."""
        value = await self._writer.call(("GET", self._keys.endpoint(endpoint, "s")))
        info = parse_record(SecurityInfo.from_dict, value) if value else None
        self._remove(endpoint)
        if info is None or info.endpoint != endpoint:
            return
        for index, key in self._indexes(info):
            holder = index.get(key)
            if holder is not None and holder != endpoint:
                # That endpoint gave the credential up; its own notice reads it again.
                self._remove(holder)
        self._put(info)

    def _changed(self, endpoint: str) -> None:
        if self.on_change is not None:
            self.on_change(endpoint)

    def _claims(self, info: SecurityInfo) -> list[str]:
        keys = self._keys
        out = []
        if info.psk_identity is not None:
            out.append(keys.psk_claim(info.psk_identity))
        if info.rpk_public_key is not None:
            out.append(keys.rpk_claim(info.rpk_public_key))
        if info.x509_identity is not None:
            out.append(keys.x509_claim(info.x509_identity))
        return out

    async def _claim(self, info: SecurityInfo) -> None:
        """Claim ``info``'s credentials in Redis; ValueError when another endpoint holds
        one (a claim whose owner no longer has that credential is taken over)."""
        endpoint = info.endpoint
        for claim in self._claims(info):
            owner = await self._writer.call(("EVALSHA", scripts.CLAIM.sha, 1, claim, endpoint))
            if owner is None:
                continue
            owner_name = owner.decode() if isinstance(owner, bytes) else str(owner)
            row = await self._writer.call(("GET", self._keys.endpoint(owner_name, "s")))
            holder = SecurityInfo.from_dict(json.loads(row)) if row else None
            took = 0
            if holder is None or claim not in self._claims(holder):
                took = await self._writer.call(
                    ("EVALSHA", scripts.TAKE_OVER.sha, 1, claim, endpoint, owner_name))
            if not took:
                raise ValueError(f"those credentials already belong to endpoint "
                                 f"{owner_name!r}")

    async def put(self, info: SecurityInfo) -> SecurityInfo | None:
        old = self._put(info)
        try:
            await self._claim(info)
        except BaseException:
            self._remove(info.endpoint)
            if old is not None:
                self._put(old)
            raise
        commands: list[Command] = [("SET", self._keys.endpoint(info.endpoint, "s"),
                                    _ENCODE(info.to_dict()))]
        if old is not None:
            kept = set(self._claims(info))
            commands += [("EVALSHA", scripts.DEL_IF.sha, 1, claim, info.endpoint)
                         for claim in self._claims(old) if claim not in kept]
        await self._writer.submit(commands)
        self._changed(info.endpoint)
        return old

    async def remove(self, endpoint: str) -> SecurityInfo | None:
        old = self._remove(endpoint)
        if old is not None:
            await self._writer.submit(
                [("DEL", self._keys.endpoint(endpoint, "s"))]
                + [("EVALSHA", scripts.DEL_IF.sha, 1, claim, endpoint)
                   for claim in self._claims(old)])
            self._changed(endpoint)
        return old


@dataclass
class EndpointState:
    """What Redis holds of one endpoint (several nodes: read before taking it over)."""

    endpoint: str
    registration: Registration | None
    #: The node whose lease the endpoint is under ('' for none).
    owner: str
    observations: list[Observation] = field(default_factory=list)
    queue: list[QueuedRequest] = field(default_factory=list)


class RedisStores:
    """The LwM2M server's stores in Redis (``--store redis://...`` or
    ``redis+cluster://...``). With ``node`` (several nodes) the registrations,
    observations and queued requests in memory are those of the endpoints the node owns."""

    def __init__(self, writer: RedisWriter, keys: Keys, target: RedisTarget,
                 node: str | None = None, lease_grace: float = LEASE_GRACE) -> None:
        self.writer = writer
        self.keys = keys
        self.target = target
        self.node = node
        self.registrations = RedisRegistrationStore(writer, keys, node, lease_grace)
        self.observations = RedisObservationStore(writer, keys)
        self.queue = RedisQueueStore(writer, keys, node)
        self.security = RedisSecurityStore(writer, keys)

    @classmethod
    async def open(cls, target: RedisTarget | str, *, node: str | None = None,
                   lease_grace: float = LEASE_GRACE, **writer_options: Any) -> RedisStores:
        """Connect (StoreOpenError when Redis cannot be used) and load what is stored
        (with ``node``: the credentials, and the endpoints whose lease names the node)."""
        if isinstance(target, str):
            target = RedisTarget.parse(target)
        if node is not None:
            check_node_id(node)
        client = await connect(target)
        slot_tag(0)  # builds the slot-tag table now rather than on the first request
        stores = cls(RedisWriter(client, target=target.address, **writer_options),
                     Keys(target.namespace), target, node, lease_grace)
        try:
            await stores.writer.load_scripts()
            if node is None:
                await stores._load()
            else:
                await stores._load_owned()
        except BaseException:
            await stores.writer.aclose()
            raise
        return stores

    async def _load(self) -> None:
        by_kind = await scan_endpoint_keys(self.writer.client, self.keys, ("r", "o", "q", "s"))
        await self._load_security(by_kind["s"])
        for _, value in await fetch(self.writer.client, by_kind["r"], "GET"):
            reg = parse_record(registration_from_json, value, raw=True)
            if reg is not None:
                self.registrations._add(reg)
        for _, fields in await fetch(self.writer.client, by_kind["o"], "HGETALL"):
            for value in fields.values():
                obs = parse_record(Observation.from_dict, value)
                if obs is not None:
                    self.observations._add(obs)
        requests = []
        for _, fields in await fetch(self.writer.client, by_kind["q"], "HGETALL"):
            for value in fields.values():
                req = parse_record(QueuedRequest.from_dict, value)
                if req is not None:
                    requests.append(req)
        self._hold_queue(requests)

    async def _load_security(self, names: list[str]) -> None:
        for _, value in await fetch(self.writer.client, names, "GET"):
            info = parse_record(SecurityInfo.from_dict, value)
            if info is not None:
                self.security._put(info)

    def _hold_queue(self, requests: list[QueuedRequest]) -> None:
        q = self.queue
        for r in sorted(requests, key=lambda r: r.sequence):
            q._by_id[r.id] = r
            if r.state == PENDING:
                q._pending.setdefault(r.endpoint, {})[r.id] = r
            q._sequence = max(q._sequence, r.sequence)

    async def _load_owned(self) -> None:
        """A node (re)starting: every credential, and the endpoints still leased to it
        (a node restarted within its leases carries on with its devices)."""
        by_kind = await scan_endpoint_keys(self.writer.client, self.keys, ("own", "s"))
        await self._load_security(by_kind["s"])
        mine = []
        for name, value in await fetch(self.writer.client, by_kind["own"], "GET"):
            parsed = self.keys.parse_endpoint_key(name)
            if parsed is not None and _text(value) == self.node:
                mine.append(parsed[0])
        for endpoint in mine:
            state = await self.read_endpoint(endpoint)
            if state.registration is not None and state.owner == self.node:
                self.install(state)

    # -- several nodes: endpoints moving between nodes -------------------------------------

    async def endpoint_of(self, registration_id: str) -> str | None:
        """The endpoint a registration id names, from the id index (None if unknown)."""
        value = await self.writer.call(("HGET", self.keys.id_index(registration_id),
                                        registration_id))
        return _text(value) if value is not None else None

    async def read_endpoint(self, endpoint: str) -> EndpointState:
        """The endpoint's registration, lease holder, observations and queue in Redis
        (one slot: one round trip)."""
        keys = self.keys
        row, owner, observed, queued = await asyncio.gather(
            self.writer.call(("GET", keys.registration(endpoint))),
            self.writer.call(("GET", keys.lease(endpoint))),
            self.writer.call(("HGETALL", keys.endpoint(endpoint, "o"))),
            self.writer.call(("HGETALL", keys.endpoint(endpoint, "q"))))
        reg = parse_record(registration_from_json, row, raw=True) if row else None
        if reg is not None and reg.endpoint != endpoint:
            reg = None
        state = EndpointState(endpoint, reg, _text(owner) if owner is not None else "")
        for value in (observed or {}).values():
            obs = parse_record(Observation.from_dict, value)
            if obs is not None and reg is not None and obs.registration_id == reg.id:
                state.observations.append(obs)
        for value in (queued or {}).values():
            req = parse_record(QueuedRequest.from_dict, value)
            if req is not None and req.endpoint == endpoint:
                state.queue.append(req)
        return state

    async def claim(self, state: EndpointState, lease_ms: int | None = None) -> str | None:
        """Take the endpoint's lease for this node, provided it is still held by
        ``state.owner`` (or already ours) and the registration is still the one read.
        None when it is ours now; else the node that holds it ('' when the registration
        went away meanwhile)."""
        reg = state.registration
        if lease_ms is None:
            lease_ms = (self.registrations.lease_ms(reg) if reg is not None
                        else int(LEASE_GRACE * 1000))
        won = await self.writer.call((
            "EVALSHA", scripts.CLAIM_LEASE.sha, 2, self.keys.lease(state.endpoint),
            self.keys.registration(state.endpoint), self.node, state.owner, lease_ms,
            row_prefix(reg.id) if reg is not None else ""))
        if won == 1:
            return None
        return _text(won) if won is not None else ""

    def install(self, state: EndpointState) -> list[Observation]:
        """Hold the endpoint in memory (its lease is this node's); returns the observations
        to resume."""
        reg = state.registration
        assert reg is not None
        self.registrations._add(reg)
        for obs in state.observations:
            self.observations._add(obs)
        self._hold_queue([r for r in state.queue if r.id not in self.queue._by_id])
        return state.observations

    def drop(self, endpoint: str) -> Registration | None:
        """Forget the endpoint in memory only (another node owns it now); Redis keeps
        everything. Returns the registration it had here."""
        reg = self.registrations._by_id.get(self.registrations._by_endpoint.get(endpoint, ""))
        if reg is not None:
            self.registrations._remove(reg.id)
            self.observations._remove_for_registration(reg.id)
        q = self.queue
        for rid in [rid for rid, r in q._by_id.items() if r.endpoint == endpoint]:
            r = q._by_id.pop(rid)
            q._unpend(r)
        return reg

    async def close(self) -> None:
        await self.writer.aclose()


def parse_record(build: Any, value: bytes, *, raw: bool = False) -> Any:
    """A stored record, or None (logged) when it cannot be read."""
    try:
        text = value.decode()
        return build(text) if raw else build(json.loads(text))
    except (ValueError, TypeError, KeyError, IndexError) as e:
        _skipped.warning("unreadable", "skipped an unreadable record in Redis: %s", e)
        return None


async def scan_endpoint_keys(client: Any, keys: Keys, kinds: tuple[str, ...]
                             ) -> dict[str, list[str]]:
    """The namespace's per-endpoint keys of ``kinds``, by kind (one SCAN over every
    primary)."""
    out: dict[str, list[str]] = {kind: [] for kind in kinds}
    async for raw in client.scan_iter(match=keys.pattern, count=1000):
        try:
            key = raw.decode()
        except UnicodeDecodeError:
            continue
        parsed = keys.parse_endpoint_key(key)
        if parsed is not None and parsed[1] in out:
            out[parsed[1]].append(key)
    return out


async def fetch(client: Any, names: list[str], command: str) -> list[tuple[str, Any]]:
    """``command`` (GET or HGETALL) on every key, pipelined; missing ones left out."""
    out: list[tuple[str, Any]] = []
    for start in range(0, len(names), LOAD_CHUNK):
        chunk = names[start:start + LOAD_CHUNK]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.execute_command(command, name)
        for name, value in zip(chunk, await pipe.execute(), strict=True):
            if value:
                out.append((name, value))
    return out
