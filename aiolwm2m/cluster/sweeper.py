"""Registrations whose node died still expire: a sweep of the expiry buckets.

Each node expires the registrations it owns on time, from its own timer. A registration
whose lease holder is dead (or that no lease holds) has nobody's timer; every
``sweep_interval`` each node looks through its share of the 16,384 slot buckets (slot
``s`` is node ``i``'s when ``s % n == i`` among the ``n`` live nodes sorted by id: shares
overlap or miss a slot only for the sweep during which the set of nodes changes) for
entries whose time is up, and expires those whose lease still names the holder it saw, in
one script per registration (a device that meanwhile updated through a live node keeps its
registration). The node emits the Expired event, as the owner would have.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.server.events import Expired
from aiolwm2m.store import redis_scripts as scripts
from aiolwm2m.store.records import registration_from_json
from aiolwm2m.store.redis_keys import SLOTS
from aiolwm2m.store.redis_stores import RedisStores, quiet

from .membership import Membership
from .periodic import Periodic

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=30.0, burst=2)
#: Buckets read per pipeline, and due entries taken per bucket per sweep.
BUCKETS_PER_PIPELINE = 1024
DUE_PER_BUCKET = 256


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class OrphanSweeper:
    def __init__(self, server: LwM2MServer, stores: RedisStores, membership: Membership,
                 interval: float) -> None:
        self.server = server
        self.stores = stores
        self.membership = membership
        self.interval = interval
        self.expired = 0
        self.sweeps = 0
        self._sweeping = Periodic(interval, self._sweep_mine, self._sweep_failed,
                                  "orphan sweeper")

    def start(self) -> None:
        self._sweeping.start()

    async def stop(self) -> None:
        await self._sweeping.stop()

    async def _sweep_mine(self) -> None:
        await self.sweep()

    @staticmethod
    def _sweep_failed(error: Exception) -> None:
        _throttled.warning("sweep", "sweeping expired registrations failed: %s", error)

    def my_slots(self) -> range:
        nodes = sorted(self.membership.alive) or [self.membership.node]
        me = self.membership.node
        index = nodes.index(me) if me in nodes else 0
        return range(index, SLOTS, len(nodes))

    async def sweep(self, slots: range | None = None) -> int:
        """Expire the due registrations of dead or absent owners in ``slots`` (this node's
        share by default); returns how many."""
        self.sweeps += 1
        server = self.server
        now = server.config.clock()
        keys = self.stores.keys
        client = self.stores.writer.client
        due: list[str] = []
        chosen = list(slots if slots is not None else self.my_slots())
        for start in range(0, len(chosen), BUCKETS_PER_PIPELINE):
            pipe = client.pipeline(transaction=False)
            for slot in chosen[start:start + BUCKETS_PER_PIPELINE]:
                pipe.zrangebyscore(keys.bucket(slot, "rx"), "-inf", now, start=0,
                                   num=DUE_PER_BUCKET)
            for members in await pipe.execute():
                due += [_text(m) for m in members]
        mine = server.registry.by_endpoint
        due = [ep for ep in due if ep not in mine]
        if not due:
            return 0
        pipe = client.pipeline(transaction=False)
        for endpoint in due:
            pipe.get(keys.lease(endpoint))
        holders = [_text(h) if h is not None else "" for h in await pipe.execute()]
        count = 0
        for endpoint, holder in zip(due, holders, strict=True):
            if holder and holder != self.membership.node and self.membership.is_alive(holder):
                continue  # its owner expires it
            row_key, expiry_key = keys.registration_keys(endpoint)
            row = await self.stores.writer.call((
                "EVALSHA", scripts.EXPIRE_ORPHAN.sha, 4, row_key, expiry_key,
                keys.lease(endpoint), keys.endpoint(endpoint, "o"), endpoint, now, holder))
            if row is None:
                continue
            count += 1
            if not row:
                continue
            try:
                reg = registration_from_json(_text(row))
            except (ValueError, TypeError, KeyError, IndexError):
                continue
            quiet(self.stores.writer.submit([("EVALSHA", scripts.HDEL_IF.sha, 1,
                                              keys.id_index(reg.id), reg.id,
                                              reg.endpoint)]))
            log.info("expired %s id=%s (its node %s is gone)", endpoint, reg.id,
                     holder or "none")
            server.events.emit(Expired(reg))
        self.expired += count
        return count

