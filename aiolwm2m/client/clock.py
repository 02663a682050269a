"""Time for the client: a clock that can also sleep, real or driven by hand.

Every timer of the client (lifetime updates, back-off, pmin/pmax, queue-mode awake window,
disable timeouts) goes through one :class:`Clock`, so a test can swap in a
:class:`ManualClock`, advance it, and see exactly which deadlines fire, without waiting.
CoAP retransmissions stay on the transport's own timers: they are a transport concern.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds: what deadlines are measured in."""

    def wall(self) -> float:
        """Seconds since the Unix epoch: what timestamps and /3/0/13 report."""

    def sleep(self, delay: float) -> Awaitable[None]:
        """An awaitable done ``delay`` seconds of this clock's time from now (now being
        the moment of the call, not the moment it is first awaited)."""


class LoopClock:
    """The running event loop's monotonic time and ``asyncio.sleep``."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return time.time()

    def sleep(self, delay: float) -> Awaitable[None]:
        return asyncio.sleep(max(0.0, delay))


class ManualClock:
    """A clock that only moves when :meth:`advance` is called.

    Sleepers are woken in deadline order; every requested delay is recorded in
    :attr:`sleeps` so tests can assert a schedule (for example the back-off delays).
    """

    def __init__(self, start: float = 1000.0, wall_offset: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_offset + self._now

    def sleep(self, delay: float) -> asyncio.Future[None]:
        self.sleeps.append(delay)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, delay), next(self._seq), fut))
        return fut

    @property
    def pending(self) -> int:
        """How many sleepers are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers one deadline at a time so that each woken
        task can schedule its next sleep before later deadlines are considered."""
        target = self._now + seconds
        while True:
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            fut.set_result(None)
            await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 5) -> None:
    """Let ready tasks run (a few loop iterations) without letting real time matter."""
    for _ in range(rounds):
        await asyncio.sleep(0)
