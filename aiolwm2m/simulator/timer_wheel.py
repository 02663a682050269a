"""One timer for the whole fleet: device wake-ups bucketed by tick.

Each device has a single next wake-up time (``wake_at``); rescheduling appends the device to
another bucket and leaves the old entry, which is skipped when its bucket comes due because
the device's ``wake_at`` no longer falls in it. Scheduling is O(1) amortised and costs one
list slot per pending wake-up.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Protocol

NEVER = float("inf")


class Sleeper(Protocol):
    wake_at: float


class TimerWheel:
    def __init__(self, resolution: float = 0.1) -> None:
        self.resolution = resolution
        self._buckets: dict[int, list[Sleeper]] = {}
        self._ticks: list[int] = []

    def _tick(self, at: float) -> int:
        return int(at / self.resolution) + 1

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def schedule(self, item: Sleeper, at: float) -> None:
        item.wake_at = at
        tick = self._tick(at)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = [item]
            heapq.heappush(self._ticks, tick)
        else:
            bucket.append(item)

    def cancel(self, item: Sleeper) -> None:
        item.wake_at = NEVER

    def next_time(self) -> float | None:
        return self._ticks[0] * self.resolution if self._ticks else None

    def due(self, now: float) -> Iterator[Sleeper]:
        """Yield each item whose wake-up time has come, once; stale entries are skipped."""
        ticks = self._ticks
        while ticks and ticks[0] * self.resolution <= now:
            tick = heapq.heappop(ticks)
            for item in self._buckets.pop(tick, ()):
                at = item.wake_at
                if at != NEVER and self._tick(at) == tick:
                    item.wake_at = NEVER
                    yield item
