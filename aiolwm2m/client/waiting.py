"""Waiting on the client's clock for "this event, or that deadline, whichever first"."""

from __future__ import annotations

import asyncio
from typing import Any

from .clock import Clock


async def event_or_deadline(clock: Clock, event: asyncio.Event, deadline: float | None
                            ) -> bool:
    """Wait until ``event`` is set (returns True) or ``deadline`` passes (False); with no
    deadline, wait for the event only."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    tasks: set[asyncio.Future[Any]] = {waiter}
    if deadline is not None:
        tasks.add(asyncio.ensure_future(clock.sleep(max(0.0, deadline - clock.now()))))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Cancel the losers without awaiting them: awaiting a cancelled helper here would
        # swallow a cancellation of the calling task that arrives meanwhile (suppressing
        # the helper's CancelledError cannot tell the two apart), leaving the caller
        # running after it was told to stop.
        for t in tasks:
            if not t.done():
                t.cancel()
    return waiter in done
