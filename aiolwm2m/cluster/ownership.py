"""Which node owns which device, and devices moving between nodes.

A node holds in memory (registry, stores, observation exchanges, queue) only the devices it
owns. A device comes to a node in one of three ways:

- it **registers** there: the registration's script takes the lease, whoever held it, and
  the node that held it is told to let the device go ("moved");
- it sends an **Update or De-register** for a registration the node does not hold (the load
  balancer now sends it here, or the node restarted): the registration is read from Redis,
  checked against the request as the registry checks its own (transport, identity, NoSec
  address), and only then is the lease taken over, from whichever node held it (the device
  talks to this node now), its observations resumed and its queue read;
- a **REST request** arrives for it while no live node holds its lease (its node died):
  the node takes the lease (compare-and-set against the dead holder, so of two nodes doing
  this at once one wins and the other routes to it) and serves the request itself.

A node that is told a device moved, or whose write is refused because another node holds
the lease, forgets the device in memory only (Redis keeps everything for its new owner).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.server.events import QueuedRequestFinished
from aiolwm2m.server.queue_mode import UNKNOWN_OUTCOME
from aiolwm2m.server.registration_params import RegistrationError
from aiolwm2m.server.registry import Origin
from aiolwm2m.store.records import FAILED, IN_FLIGHT, PENDING
from aiolwm2m.store.redis_stores import EndpointState, RedisStores

from .bus import NodeBus
from .membership import Membership

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)

MOVED = "moved"


class _Users:
    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.count = 0


class Ownership:
    def __init__(self, server: LwM2MServer, stores: RedisStores, membership: Membership,
                 bus: NodeBus) -> None:
        self.server = server
        self.stores = stores
        self.node = membership.node
        self.membership = membership
        self.bus = bus
        self._locks: dict[str, _Users] = {}
        self._tasks = BackgroundTasks(log, "letting a device go")
        #: Devices taken over from another node, and let go to one.
        self.adopted = 0
        self.released = 0
        stores.registrations.on_taken = self._taken
        stores.registrations.on_lost = self._lost
        bus.notices[MOVED] = self._moved

    @asynccontextmanager
    async def _held(self, endpoint: str) -> AsyncIterator[None]:
        """One take-over of an endpoint at a time on this node (the lock goes with its
        last user, so there is none per idle endpoint)."""
        entry = self._locks.get(endpoint)
        if entry is None:
            entry = self._locks[endpoint] = _Users()
        entry.count += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.count -= 1
            if not entry.count:
                self._locks.pop(endpoint, None)

    def _is_live_other(self, node: str) -> bool:
        return bool(node) and node != self.node and self.membership.is_alive(node)

    async def _held_elsewhere(self, node: str) -> bool:
        """Whether ``node`` is another node that is alive (asking Redis about one not seen
        yet)."""
        return bool(node) and node != self.node and await self.membership.confirm_alive(node)

    # -- a device talks to this node -------------------------------------------------------

    async def adopt_for_device(self, registration_id: str, origin: Origin,
                               query: Sequence[str]) -> None:
        """An Update or De-register for a registration this node does not hold: take the
        device over if Redis has that registration and the request may act on it.
        Nothing happens otherwise (the registry then answers 4.04 as for any unknown id)."""
        endpoint = await self.stores.endpoint_of(registration_id)
        if endpoint is None:
            return
        async with self._held(endpoint):
            registry = self.server.registry
            for _ in range(3):
                if registration_id in registry.by_id:
                    return
                state = await self.stores.read_endpoint(endpoint)
                reg = state.registration
                if reg is None or reg.id != registration_id:
                    return
                try:
                    registry._check_owner(reg, origin, query)
                except RegistrationError:
                    return  # not the device's own request: nothing moves
                if await self._take(state):
                    return

    # -- a REST request for a device -------------------------------------------------------

    async def route(self, endpoint: str) -> str | None:
        """The node a REST request for ``endpoint`` goes to, or None to serve it here (the
        device is this node's, now perhaps taken from a dead node, or not registered)."""
        if endpoint in self.server.registry.by_endpoint:
            return None
        holder = await self.stores.writer.call(("GET", self.stores.keys.lease(endpoint)))
        if holder is not None:
            owner = holder.decode() if isinstance(holder, bytes) else str(holder)
            if await self._held_elsewhere(owner):
                return owner
        async with self._held(endpoint):
            for _ in range(3):
                if endpoint in self.server.registry.by_endpoint:
                    return None
                state = await self.stores.read_endpoint(endpoint)
                if state.registration is None:
                    return None
                if await self._held_elsewhere(state.owner):
                    return state.owner
                if await self._take(state):
                    return None
        return None

    # -- taking over and letting go --------------------------------------------------------

    async def _take(self, state: EndpointState) -> bool:
        """Claim the lease from ``state.owner`` and hold the device here. False when
        another node claimed it first (the caller reads again)."""
        previous = state.owner
        lost = await self.stores.claim(state)
        if lost is not None:
            return False
        previous_alive = await self._held_elsewhere(previous)
        await self._install(state, previous_alive)
        if previous_alive:
            self.bus.notify_soon(previous, MOVED, state.endpoint.encode())
        log.info("node %s: took %s over from %s", self.node, state.endpoint,
                 f"node {previous}" if previous else "no node")
        return True

    async def _install(self, state: EndpointState, previous_alive: bool) -> None:
        server = self.server
        reg = state.registration
        assert reg is not None
        records = self.stores.install(state)
        server.registry._index(reg)
        server.queue.depth += sum(1 for r in state.queue if r.state == PENDING)
        await server.observations.adopt(records, dict(server.transports))
        self.adopted += 1
        if previous_alive:
            return  # its old node may still be sending what it marked in flight
        # Its node died (or this node's earlier run): what was in flight there has an
        # unknown outcome, as after a restart.
        now = server.config.clock()
        for request in state.queue:
            if request.state == IN_FLIGHT:
                done = await self.stores.queue.finish(request.id, FAILED,
                                                      dict(UNKNOWN_OUTCOME), now)
                if done is not None:
                    server.events.emit(QueuedRequestFinished(done))

    def _taken(self, endpoint: str, previous: str) -> None:
        """A Register here took ``endpoint`` from ``previous``: that node lets it go."""
        self.adopted += 1
        if self._is_live_other(previous):
            self.bus.notify_soon(previous, MOVED, endpoint.encode())

    def _lost(self, endpoint: str) -> None:
        """A write of ``endpoint`` was refused: another node holds its lease."""
        self.release(endpoint)

    def _moved(self, sender: str, body: bytes) -> None:
        endpoint = body.decode("utf-8", "replace")
        self._tasks.spawn(self._release_unless_ours(endpoint))

    async def _release_unless_ours(self, endpoint: str) -> None:
        # The notice may be stale (the device came back here since): the lease decides.
        holder = await self.stores.writer.call(("GET", self.stores.keys.lease(endpoint)))
        if holder is not None and (holder.decode() if isinstance(holder, bytes)
                                   else str(holder)) == self.node:
            return
        self.release(endpoint)

    def close(self) -> None:
        self._tasks.cancel_all()

    def release(self, endpoint: str) -> None:
        """Forget ``endpoint`` here, in memory only: its new owner has it in Redis."""
        server = self.server
        reg = server.registry.by_endpoint.get(endpoint)
        if reg is not None:
            server.registry._unindex(reg)
            server.queue.forget(reg)
            server.observations.release(reg.id)
        pending = sum(1 for r in self.stores.queue._by_id.values()
                      if r.endpoint == endpoint and r.state == PENDING)
        server.queue.depth = max(0, server.queue.depth - pending)
        if self.stores.drop(endpoint) is not None or reg is not None:
            self.released += 1
            log.info("node %s: let %s go to the node it talks to now", self.node, endpoint)
