"""A background task that runs an action every so often and stops cooperatively.

Stopping sets a flag the loop looks at, waits for the loop to see it, and cancels only what
is still running after a bounded wait. Cancelling first is what hung a full test run: a
cancellation that lands inside a redis-py command can be swallowed there, and the task,
marked as cancelling, went on beating while its stop awaited it forever. With the flag the
loop ends after that command at the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

#: How long a stop waits for the loop to notice, and again after cancelling it.
STOP_TIMEOUT = 2.0


class Periodic:
    def __init__(self, interval: float, action: Callable[[], Awaitable[None]],
                 on_error: Callable[[Exception], None], name: str) -> None:
        self.interval = interval
        self._action = action
        self._on_error = on_error
        self._name = name
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                return
            try:
                await self._action()
            except Exception as e:
                self._on_error(e)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)
