"""Values kept in memory: for tests, development and servers run with ``store=memory``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence

from .device_key import device_key
from .samples import PathValue, ValueSample, under
from .store import MAX_QUERY_SAMPLES, Retention, ValueStoreStats


class MemoryValueStore:
    def __init__(self, retention: Retention | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.retention = retention or Retention()
        self.clock = clock
        self.stats = ValueStoreStats()
        #: Every kept sample in recording order (for the size bound), and per endpoint.
        self._all: deque[ValueSample] = deque()
        self._by_endpoint: dict[str, deque[ValueSample]] = {}
        self._latest: dict[str, dict[str, ValueSample]] = {}
        self._latest_count = 0
        self._seq = 0
        self._task: asyncio.Task[None] | None = None

    def record(self, endpoint: str, time: float, source: str, values: Sequence[PathValue]
               ) -> None:
        endpoint = device_key(endpoint)
        if not values:
            return
        seq = self._seq
        samples = [ValueSample(endpoint, path, time, rtype, value, source, seq + i)
                   for i, (path, rtype, value) in enumerate(values, 1)]
        self._seq = seq + len(samples)
        self._all.extend(samples)
        mine = self._by_endpoint.get(endpoint)
        if mine is None:
            mine = self._by_endpoint[endpoint] = deque()
        mine.extend(samples)
        latest = self._latest.get(endpoint)
        if latest is None:
            latest = self._latest[endpoint] = {}
        for sample in samples:
            old = latest.get(sample.path)
            if old is None:
                self._latest_count += 1
                latest[sample.path] = sample
            elif time >= old.time:
                latest[sample.path] = sample
        self.stats.recorded += len(samples)
        if len(self._all) > self.retention.max_samples:
            self._evict(len(self._all) - self.retention.max_samples)
        if self._latest_count > self.retention.max_samples:
            # A tenth more than needed, so that a stream of new paths sorts once in a while.
            self._evict_latest(self._latest_count - self.retention.max_samples
                               + self.retention.max_samples // 10)

    def _evict(self, count: int) -> None:
        for _ in range(count):
            sample = self._all.popleft()
            mine = self._by_endpoint[sample.endpoint]
            mine.popleft()  # recording order per endpoint is the global one
            if not mine:
                del self._by_endpoint[sample.endpoint]

    def _evict_latest(self, count: int) -> None:
        oldest = sorted((s for paths in self._latest.values() for s in paths.values()),
                        key=lambda s: (s.time, s.seq))[:count]
        for sample in oldest:
            self._drop_latest(sample)

    def _drop_latest(self, sample: ValueSample) -> None:
        paths = self._latest[sample.endpoint]
        del paths[sample.path]
        self._latest_count -= 1
        if not paths:
            del self._latest[sample.endpoint]

    async def latest(self, endpoint: str, prefix: str = "") -> list[ValueSample]:
        endpoint = device_key(endpoint)
        paths = self._latest.get(endpoint, {})
        return [paths[p] for p in sorted(paths) if under(p, prefix)]

    async def history(self, endpoint: str, prefix: str = "", since: float | None = None,
                      until: float | None = None, limit: int = 1000) -> list[ValueSample]:
        endpoint = device_key(endpoint)
        limit = max(0, min(limit, MAX_QUERY_SAMPLES))
        found = [s for s in self._by_endpoint.get(endpoint, ())
                 if under(s.path, prefix) and (since is None or s.time >= since)
                 and (until is None or s.time <= until)]
        found.sort(key=lambda s: (s.time, s.seq))
        return found[len(found) - limit:] if limit else []

    async def forget(self, endpoint: str) -> None:
        endpoint = device_key(endpoint)
        gone = self._by_endpoint.pop(endpoint, None)
        for sample in list(self._latest.get(endpoint, {}).values()):
            self._drop_latest(sample)
        if gone:
            self._all = deque(s for s in self._all if s.endpoint != endpoint)

    async def prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age
        if any(s.time < cutoff for s in self._all):
            self._all = deque(s for s in self._all if s.time >= cutoff)
            for endpoint in list(self._by_endpoint):
                kept = deque(s for s in self._by_endpoint[endpoint] if s.time >= cutoff)
                if kept:
                    self._by_endpoint[endpoint] = kept
                else:
                    del self._by_endpoint[endpoint]
        for sample in [s for paths in self._latest.values() for s in paths.values()
                       if s.time < cutoff]:
            self._drop_latest(sample)

    async def flush(self) -> None:
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._prune_every())

    async def _prune_every(self) -> None:
        while True:
            await asyncio.sleep(self.retention.prune_interval)
            await self.prune(self.clock())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
