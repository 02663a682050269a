"""One event-loop timer that fires at the earliest deadline asked of it.

Transports keep their protocol timers in sans-IO cores (retransmissions, handshakes, link
keep-alives) and only need the loop to wake them at the next deadline: re-arming for a
later deadline keeps the earlier timer, an earlier one replaces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_SLACK = 0.001


class Wakeup:
    __slots__ = ("_at", "_callback", "_clock", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float],
                 callback: Callable[[], None]) -> None:
        self._loop = loop
        self._clock = clock
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0

    def at(self, deadline: float | None) -> None:
        """Fire at ``deadline`` (in ``clock``'s time, at most a millisecond after it); None
        asks for nothing."""
        if deadline is None:
            return
        if self._handle is not None:
            if self._at <= deadline:
                return
            self._handle.cancel()
        self._at = deadline
        # uvloop keeps time and timers in whole milliseconds and rounds delays to the nearest
        # one, so without the slack a timer can fire a hair before its deadline by
        # loop.time(): the owner finds nothing due and re-arms a zero delay, spinning until
        # the clock ticks over.
        self._handle = self._loop.call_later(max(0.0, deadline - self._clock()) + _SLACK,
                                             self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._callback()
