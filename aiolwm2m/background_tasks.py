"""Work started in the background by a long-lived object (a client, a fleet, the server's
queue and observations): kept referenced until done (the event loop holds tasks only
weakly), cancelled together when the owner closes, and logged when it fails, instead of
surfacing later as "exception was never retrieved"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any


class BackgroundTasks:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._tasks: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s failed", self._what, exc_info=task.exception())
