"""One node of several: its heartbeat, inbox, leases, events and sweeps, put together.

``LwM2MServer`` makes one when ``ServerConfig.node_id`` is set (its stores are then Redis
stores opened for that node) and calls :meth:`ClusterNode.adopt_for_device` for an Update
or De-register of a registration it does not hold; the web layer routes REST requests
through :attr:`ClusterNode.ownership` and serves the bus requests it knows how to answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.server.registry import Origin
from aiolwm2m.store.redis_stores import RedisStores

from .bus import NodeBus
from .events import ClusterEvents
from .membership import Membership
from .ownership import Ownership
from .settings import ClusterSettings
from .sweeper import OrphanSweeper

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)

SECURITY_CHANGED = "security"


class ClusterNode:
    def __init__(self, server: LwM2MServer, stores: RedisStores,
                 settings: ClusterSettings) -> None:
        node = stores.node
        if node is None:
            raise ValueError("a cluster node needs Redis stores opened with its node id")
        self.server = server
        self.stores = stores
        self.settings = settings
        self.node = node
        client = stores.writer.client
        keys = stores.keys
        self.membership = Membership(client, keys, node, settings.node_ttl, self.figures)
        self.bus = NodeBus(client, keys, node, max_len=settings.stream_max_len)
        self.ownership = Ownership(server, stores, self.membership, self.bus)
        self.events = ClusterEvents(client, keys, self.membership, self.bus, server.events,
                                    max_len=settings.stream_max_len)
        self.sweeper = OrphanSweeper(server, stores, self.membership, settings.sweep_interval)
        #: REST requests this node sent to owners, served for other nodes, and could not
        #: route (the owner did not answer in time or could not be reached).
        self.routed_out = 0
        self.routed_in = 0
        self.route_failures = 0
        #: Where this node's REST API listens (set by the web layer; shown to the others).
        self.http_url: str | None = None
        self._tasks = BackgroundTasks(log, "reading changed credentials")
        stores.security.on_change = self._security_changed
        self.bus.notices[SECURITY_CHANGED] = self._security_notice
        self.membership.on_beat.append(self._after_beat)

    @classmethod
    async def start_for(cls, server: LwM2MServer) -> ClusterNode:
        stores = server.stores
        if not isinstance(stores, RedisStores):
            raise ValueError("several nodes share Redis stores: --node-id needs --store "
                             "redis://... or redis+cluster://...")
        node = cls(server, stores, server.config.cluster)
        await node.start()
        return node

    async def start(self) -> None:
        await self.bus.start(self.membership.incarnation)
        await self.membership.start()
        self.sweeper.start()
        log.info("node %s joined; live nodes: %s", self.node,
                 ", ".join(sorted(self.membership.alive)))

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.events.stop()
        await self.membership.stop(leave=True)
        await self.bus.stop()
        self.ownership.close()
        self._tasks.cancel_all()

    # -- what the server asks --------------------------------------------------------------

    async def adopt_for_device(self, registration_id: str, origin: Origin,
                               query: Sequence[str]) -> None:
        await self.ownership.adopt_for_device(registration_id, origin, query)

    # -- figures --------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        """What this node's heartbeat tells the others (the cluster totals add them)."""
        server = self.server
        started = server.started
        return {
            "registrations": len(server.registry.by_id) if started else 0,
            "observations": len(server.observations) if started else 0,
            "queue_depth": server.queue.depth if started else 0,
            "watching": self.events.watching, "watch_epoch": self.events.watch_epoch,
            "routed_in": self.routed_in, "routed_out": self.routed_out,
            "adopted": self.ownership.adopted, "released": self.ownership.released,
            "http": self.http_url}

    def _after_beat(self) -> None:
        for node, figures in self.membership.alive.items():
            if node != self.node:
                self.events.heard(node, bool(figures.get("watching")),
                                  int(figures.get("watch_epoch") or 0))

    # -- credentials changed on one node -----------------------------------------------------

    def _security_changed(self, endpoint: str) -> None:
        for peer in self.membership.peers():
            self.bus.notify_soon(peer, SECURITY_CHANGED, endpoint.encode())

    def _security_notice(self, sender: str, body: bytes) -> None:
        self._tasks.spawn(self.stores.security.reload(body.decode("utf-8", "replace")))
