"""Downlink over T8: each CoAP datagram for a device becomes one MT delivery, in order per
device, within its time to live (LPW-007), its quota (LPW-008/009), and whatever the SCEF
says.

Per device, datagrams wait in a FIFO served by one task at a time (so the device sees them
in order); across devices, up to ``max_in_flight`` T8 requests run at once. For the head of
a device's queue:

* its time to live has passed: dropped, and reported (``on_failed(..., "ttl-expired")``);
* its device's downlink quota is spent: it waits for tokens (within its time to live);
* no configuration reaches the device yet: it waits for one;
* POST ``downlink-data-deliveries`` with ``maximumLatency`` (what is left of its time to
  live, seconds) and ``requestedRetransmissionTime`` (when it stops being useful);
  200: delivered; 201: pending (kept until the status notification, or its deadline);
* the SCEF is unreachable, 5xx, or 429: the datagram stays, and the device's queue backs
  off (``Retry-After`` when given, else doubling): nothing is lost while the SCEF is down;
  500 with ``requestedRetransmissionTime`` waits until then if that is within the TTL;
* 404: the configuration is gone: it is made again and the datagram waits for it;
* any other refusal (403 DATA_TOO_LARGE, 400...): dropped and reported with the cause.

A Confirmable datagram the SCEF holds (201) is not sent again when the message layer
retransmits it: the SCEF delivers it when it can, and a second copy would only cost radio
time. Its status notification counts as the transmission's outcome (LPW-002).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.log_throttle import LogThrottle

from . import t8_model as m
from .quotas import DOWNLINK, DeviceQuota
from .scef_client import ScefUnreachable, T8Client, T8Error
from .settings import NiddSettings
from .t8_fields import date_time, format_date_time

log = logging.getLogger(__name__)

Peer = tuple[str, int]
#: ident -> (configuration URI, T8 attribute naming the device), or None (none yet)
Route = Callable[[str], tuple[str, str] | None]
_CON = 0


class Datagram:
    __slots__ = ("code", "con", "data", "deadline", "mid", "peer", "token", "url")

    def __init__(self, peer: Peer, data: bytes, deadline: float) -> None:
        self.peer = peer
        self.data = data
        self.deadline = deadline
        first = data[0] if data else 0
        self.con = (first >> 4) & 3 == _CON
        tkl = first & 0x0F
        self.code = data[1] if len(data) > 1 else 0
        self.mid = int.from_bytes(data[2:4], "big") if len(data) >= 4 else -1
        self.token = bytes(data[4:4 + tkl]) if tkl <= 8 else b""
        self.url: str | None = None

    @property
    def is_request(self) -> bool:
        return 0 < self.code < 32


class _DeviceQueue:
    __slots__ = ("backoff", "items", "running")

    def __init__(self) -> None:
        self.items: collections.deque[Datagram] = collections.deque()
        self.running = False
        self.backoff = 0.0


class Downlink:
    def __init__(self, client: T8Client, settings: NiddSettings, route: Route, *,
                 quota_of: Callable[[str], DeviceQuota | None],
                 on_failed: Callable[[Datagram, str], None],
                 on_config_lost: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.client = client
        self.settings = settings
        self.route = route
        self.quota_of = quota_of
        self.on_failed = on_failed
        self.on_config_lost = on_config_lost
        self.clock = clock
        self.wall = wall
        self.queues: dict[Peer, _DeviceQueue] = {}
        #: Deliveries the SCEF answered 201 for, by URI, until their status arrives.
        self.pending: dict[str, Datagram] = {}
        #: Confirmable datagrams the SCEF holds, by (peer, message id).
        self.held: dict[tuple[Peer, int], str] = {}
        self.queued = 0
        self.stats: Counter[str] = Counter()
        self.rds: m.RdsPort | None = (m.RdsPort(*settings.rds_ports)
                                      if settings.rds_ports is not None else None)
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._tasks = BackgroundTasks(log, "NIDD downlink")
        self._wake: dict[Peer, asyncio.Event] = {}
        self._log = LogThrottle(log, interval=10.0, burst=5)

    # -- the queue ----------------------------------------------------------------------------

    def submit(self, peer: Peer, data: bytes, deadline: float) -> None:
        d = Datagram(peer, data, deadline)
        if d.con and (peer, d.mid) in self.held:
            self.stats["retransmissions_held"] += 1
            return
        q = self.queues.get(peer)
        if q is None:
            q = self.queues[peer] = _DeviceQueue()
        if len(q.items) >= self.settings.max_queued_per_device:
            self._drop(q, q.items.popleft(), "queue-full")
        if self.queued >= self.settings.max_queued:
            self.stats["refused_queue_full"] += 1
            self.on_failed(d, "queue-full")
            return
        q.items.append(d)
        self.queued += 1
        self.stats["queued"] += 1
        if not q.running:
            q.running = True
            self._tasks.spawn(self._drain(peer, q))

    def _drop(self, q: _DeviceQueue, d: Datagram, reason: str) -> None:
        self.queued -= 1
        self.stats[f"dropped_{reason}"] += 1
        self.on_failed(d, reason)

    def wake(self, peer: Peer) -> None:
        """Something changed for ``peer`` (a configuration now reaches it): stop waiting."""
        event = self._wake.get(peer)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _pause(self, peer: Peer, seconds: float) -> None:
        if seconds <= 0:
            return
        event = self._wake.setdefault(peer, asyncio.Event())
        event.clear()
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            self._wake.pop(peer, None)

    async def _drain(self, peer: Peer, q: _DeviceQueue) -> None:
        try:
            while q.items:
                await self._head(peer, q)
        finally:
            q.running = False
            if not q.items and self.queues.get(peer) is q:
                del self.queues[peer]

    async def _head(self, peer: Peer, q: _DeviceQueue) -> None:
        d = q.items[0]
        now = self.clock()
        left = d.deadline - now
        if left <= 0:
            q.items.popleft()
            self._drop(q, d, "ttl-expired")
            return
        quota = self.quota_of(peer[0])
        if quota is not None:
            wait, which = quota.wait(DOWNLINK, len(d.data), now)
            if wait > 0:
                if math.isinf(wait) or wait >= left:
                    q.items.popleft()
                    self.stats[f"quota_{which}"] += 1
                    self._drop(q, d, f"quota-{which}")
                    return
                self.stats["quota_waits"] += 1
                await self._pause(peer, wait)
                return
        route = self.route(peer[0])
        if route is None:
            await self._pause(peer, min(left, 5.0))
            return
        config_url, attribute = route
        ext, msisdn, group = m.identifiers(attribute, peer[0])
        transfer = m.NiddDownlinkDataTransfer(
            data=d.data, externalId=ext, msisdn=msisdn, externalGroupId=group,
            maximumLatency=max(1, int(left)),
            requestedRetransmissionTime=format_date_time(self.wall() + left), rdsPort=self.rds)
        try:
            async with self._slots:
                answer = await self.client.deliver(config_url, transfer)
        except ScefUnreachable as e:
            await self._back_off(peer, q, e.retry_after, f"SCEF unreachable: {e}")
            return
        except T8Error as e:
            await self._refused(peer, q, d, e, config_url)
            return
        q.backoff = 0.0
        q.items.popleft()
        self.queued -= 1
        if quota is not None:
            quota.take(DOWNLINK, len(d.data), self.clock())
        if answer.status == 201 and answer.location is not None and not m.is_success(
                answer.transfer.deliveryStatus or ""):
            self.stats["pending"] += 1
            d.url = answer.location
            self.pending[answer.location] = d
            if d.con:
                self.held[(peer, d.mid)] = answer.location
        else:
            self.stats["delivered"] += 1

    async def _back_off(self, peer: Peer, q: _DeviceQueue, retry_after: float | None,
                        why: str) -> None:
        s = self.settings
        q.backoff = min(max(q.backoff * 2, s.backoff_initial), s.backoff_max)
        delay = retry_after if retry_after is not None else q.backoff
        self.stats["backoffs"] += 1
        self._log.warning("backoff", "NIDD downlink to %s waits %.1f s: %s", peer[0], delay, why)
        await self._pause(peer, min(delay, max(0.0, q.items[0].deadline - self.clock())))

    async def _refused(self, peer: Peer, q: _DeviceQueue, d: Datagram, e: T8Error,
                       config_url: str) -> None:
        if e.status == 429 or (e.status >= 500 and e.failure is None):
            await self._back_off(peer, q, e.retry_after, str(e))
            return
        if e.status == 404:
            self.on_config_lost(config_url)
            await self._pause(peer, min(1.0, d.deadline - self.clock()))
            return
        if e.failure is not None and e.failure.requestedRetransmissionTime:
            try:
                at = date_time(e.failure.requestedRetransmissionTime, "/")
            except ValueError:
                at = 0.0
            wait = at - self.wall()
            if 0 < wait < d.deadline - self.clock():
                await self._pause(peer, wait)
                return
        q.items.popleft()
        self._drop(q, d, f"refused-{e.cause}")

    # -- what the SCEF tells later --------------------------------------------------------------

    def on_status(self, url: str, status: str) -> Datagram | None:
        """A delivery's status notification; returns the datagram if it failed."""
        d = self.pending.get(url)
        if d is None:
            self.stats["status_unknown"] += 1
            return None
        if status in m.PENDING_STATUSES:
            return None
        del self.pending[url]
        if d.con:
            self.held.pop((d.peer, d.mid), None)
        if m.is_failure(status):
            self.stats["failed"] += 1
            self.on_failed(d, status)
            return d
        self.stats["delivered"] += 1
        return None

    def sweep(self) -> None:
        """Forget pending deliveries whose deadline passed without a final status."""
        now = self.clock()
        for url, d in list(self.pending.items()):
            if d.deadline < now:
                del self.pending[url]
                if d.con:
                    self.held.pop((d.peer, d.mid), None)
                self.stats["dropped_ttl-expired"] += 1
                self.on_failed(d, "ttl-expired")

    def forget_peer(self, peer: Peer) -> list[str]:
        """Drop everything queued for ``peer``; returns the URIs of its pending deliveries
        (the caller may delete them at the SCEF)."""
        q = self.queues.get(peer)
        if q is not None:
            self.queued -= len(q.items)
            q.items.clear()
        urls = [u for u, d in self.pending.items() if d.peer == peer]
        for u in urls:
            d = self.pending.pop(u)
            if d.con:
                self.held.pop((d.peer, d.mid), None)
        return urls

    def close(self) -> None:
        self._tasks.cancel_all()

    def snapshot(self) -> dict[str, Any]:
        """What waits now, and the counters since start under ``totals`` (apart: they have
        keys of the same names, "queued" and "pending", which count every one ever)."""
        return {"queued": self.queued, "pending": len(self.pending),
                "devices_waiting": len(self.queues), "totals": dict(self.stats)}
