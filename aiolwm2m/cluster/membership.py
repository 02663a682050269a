"""Which nodes are alive: each node's heartbeat key, and every node's view of the others.

A node sets ``NS:{n:NODE}:alive`` (its figures as JSON) with a time to live of
``node_ttl`` three times per period, and adds its id to ``NS:{nodes}``. Reading the others'
heartbeats on the same beat gives each node the list of live nodes (with their figures, for
the cluster totals) within a third of the TTL; a node whose key has expired is dead, and its
leases no longer count.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.redis_keys import Keys

from .periodic import Periodic

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=30.0, burst=2)


class Membership:
    def __init__(self, client: Any, keys: Keys, node: str, ttl: float,
                 figures: Callable[[], dict[str, Any]]) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.ttl = ttl
        self.figures = figures
        #: Tells this run of the node apart from an earlier one with the same id.
        self.incarnation = secrets.token_hex(6)
        self.started_at = time.time()
        #: Live nodes (this one included) and what their last heartbeat said.
        self.alive: dict[str, dict[str, Any]] = {}
        #: Called with a node id when it appears, and when it is found dead.
        self.on_join: list[Callable[[str], None]] = []
        self.on_leave: list[Callable[[str], None]] = []
        #: Called after every beat that read the others.
        self.on_beat: list[Callable[[], None]] = []
        self.beats = 0
        self.healthy = False
        self._beating = Periodic(ttl / 3, self.beat, self._beat_failed, f"heartbeat {node}")

    def is_alive(self, node: str) -> bool:
        return node in self.alive

    async def confirm_alive(self, node: str) -> bool:
        """Whether ``node`` is alive, asking Redis when this node has not seen it beat yet
        (it joined since the last beat): a lease is never taken from a live node that is
        merely new."""
        if node in self.alive:
            return True
        try:
            return bool(await self.client.exists(self.keys.node(node, "alive")))
        except Exception:
            return False

    def peers(self) -> list[str]:
        return sorted(n for n in self.alive if n != self.node)

    async def start(self) -> None:
        await self.beat()
        self._beating.start()

    def _beat_failed(self, error: Exception) -> None:
        self.healthy = False
        _throttled.warning("beat", "node %s: heartbeat failed: %s", self.node, error)

    async def beat(self) -> None:
        """Say this node is alive, then read who else is."""
        payload = {"node": self.node, "incarnation": self.incarnation,
                   "started": self.started_at, "at": time.time(), **self.figures()}
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.node(self.node, "alive"), json.dumps(payload),
                 px=int(self.ttl * 1000))
        pipe.sadd(self.keys.nodes, self.node)
        await pipe.execute()
        members = sorted(m.decode() if isinstance(m, bytes) else str(m)
                         for m in await self.client.smembers(self.keys.nodes))
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            pipe.get(self.keys.node(member, "alive"))
        alive: dict[str, dict[str, Any]] = {}
        for member, value in zip(members, await pipe.execute(), strict=True):
            if value is None:
                continue
            with contextlib.suppress(ValueError, TypeError):
                figures = json.loads(value)
                if isinstance(figures, dict):
                    alive[member] = figures
        alive.setdefault(self.node, payload)
        joined = [n for n in alive if n not in self.alive]
        left = [n for n in self.alive if n not in alive]
        self.alive = alive
        self.beats += 1
        self.healthy = True
        for node in joined:
            if node != self.node:
                log.info("node %s: node %s is alive", self.node, node)
            for callback in self.on_join:
                callback(node)
        for node in left:
            log.warning("node %s: node %s stopped beating; its devices go to the nodes "
                        "they talk to next", self.node, node)
            for callback in self.on_leave:
                callback(node)
        for after in self.on_beat:
            after()

    async def stop(self, *, leave: bool = True) -> None:
        """Stop beating; with ``leave`` delete the heartbeat (a clean stop: the others see
        the node gone at once rather than after its TTL)."""
        await self._beating.stop()
        if leave:
            with contextlib.suppress(Exception):
                await self.client.delete(self.keys.node(self.node, "alive"))
