"""Published values written behind: the newest value of each topic that changed goes to the
store at most ``flush_interval`` after it was published, in one batch, one batch at a time.

Shared by the SQLite and Redis topic stores, which differ only in how a batch is written.
A batch that fails is kept for the next flush, except where a newer value replaced it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: (value, content format, published at).
Value = tuple[bytes | None, int | None, float | None]
WriteBatch = Callable[[dict[str, Value]], Awaitable[None]]


class ValuesBehind:
    def __init__(self, write: WriteBatch, flush_interval: float, where: str) -> None:
        self._write = write
        self.flush_interval = flush_interval
        self._where = where
        #: topic id -> the newest unwritten value of each.
        self._dirty: dict[str, Value] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None
        self.closed = False

    def set(self, topic_id: str, value: Value) -> None:
        if self.closed:
            return
        self._dirty[topic_id] = value
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval,
                                                                self._flush_soon)

    def discard(self, topic_id: str) -> None:
        """A topic saved or deleted: what was waiting for it is not written."""
        self._dirty.pop(topic_id, None)

    def _flush_soon(self) -> None:
        self._timer = None
        asyncio.ensure_future(self.flush()).add_done_callback(self._log_failure)

    def _log_failure(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("writing published values to %s failed: %s", self._where,
                      task.exception())

    async def flush(self) -> None:
        # One flush at a time: a second waits for the first, then writes what came since.
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
        if not self._dirty:
            return
        batch, self._dirty = self._dirty, {}
        self._flushing = asyncio.get_running_loop().create_future()
        try:
            await self._write(batch)
        except BaseException:
            for tid, value in batch.items():
                self._dirty.setdefault(tid, value)
            raise
        finally:
            done, self._flushing = self._flushing, None
            done.set_result(None)

    async def close(self) -> None:
        """Write what waits; nothing is taken afterwards."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.flush()
        finally:
            self.closed = True
