"""How the SCEF emulator posts notifications to the SCS/AS callbacks (httpx).

Notifications with the same key (one UE, one delivery) go out in order: each key is served
by one of ``workers`` FIFO queues, so a UE's uplink packets arrive in the order it sent
them while different UEs are served concurrently. A callback that fails (connection
refused, 5xx) is retried with back-off a few times, then dropped and counted: the SCS/AS
is told of none of this, as a real SCEF would not be able to tell it either. The queues
are bounded; beyond, notifications are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from typing import Any

import httpx

from aiolwm2m.log_throttle import LogThrottle

log = logging.getLogger(__name__)


class CallbackNotifier:
    def __init__(self, *, workers: int = 16, max_queued: int = 100_000, attempts: int = 4,
                 first_retry: float = 0.2, timeout: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.http = client or httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=workers * 2,
                                                 max_keepalive_connections=workers * 2,
                                                 keepalive_expiry=2.0))
        self.attempts = attempts
        self.first_retry = first_retry
        self.max_queued = max_queued
        self._queues: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = [
            asyncio.Queue() for _ in range(workers)]
        self._tasks = [asyncio.create_task(self._work(q)) for q in self._queues]
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        #: Called with (url, body, response or None) after each attempt (tests check bodies).
        self.observers: list[Callable[[str, dict[str, Any], httpx.Response | None], None]] = []
        self._log = LogThrottle(log, interval=10.0, burst=5)

    @property
    def queued(self) -> int:
        return sum(q.qsize() for q in self._queues)

    def send(self, url: str, body: dict[str, Any], key: str) -> None:
        if self.queued >= self.max_queued:
            self.dropped += 1
            self._log.warning("queue-full", "notification queue full: dropped one for %s", url)
            return
        queue = self._queues[zlib.crc32(key.encode()) % len(self._queues)]
        queue.put_nowait((url, body))

    async def _work(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        while True:
            url, body = await queue.get()
            delay = self.first_retry
            for attempt in range(self.attempts):
                response: httpx.Response | None = None
                try:
                    response = await self.http.post(url, json=body)
                except httpx.HTTPError as e:
                    self._log.info("unreachable", "callback %s: %s", url, e)
                for observer in self.observers:
                    observer(url, body, response)
                if response is not None and response.status_code < 500:
                    if response.status_code >= 300:
                        self._log.info("refused", "callback %s answered %d", url,
                                       response.status_code)
                    self.sent += 1
                    break
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(delay)
                    delay *= 2
            else:
                self.failed += 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.http.aclose()
