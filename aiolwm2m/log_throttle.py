"""Logging that an attacker cannot turn into a flood: a throttled logger writes at most a
few lines per interval for each kind of message and then one summary of what it held back.

A hostile peer can make a server refuse thousands of requests a second; logging every one
would fill the disk (an accept loop once wrote 300 MB of tracebacks in 35 s) and cost more
CPU than the refusals themselves."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogThrottle:
    """Per-key budget of log lines: ``burst`` lines per ``interval`` seconds for each key,
    then silence until the interval ends, when one line says how many were suppressed."""

    def __init__(self, logger: logging.Logger, *, interval: float = 10.0, burst: int = 5,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 1024) -> None:
        self.logger = logger
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        # key -> [window start, lines written in the window, lines suppressed]
        self._windows: dict[str, list[float]] = {}

    def log(self, level: int, key: str, msg: str, *args: object,
            exc_info: bool | BaseException = False) -> bool:
        """Log ``msg`` under ``key`` unless its budget is spent; True if it was written."""
        if not self.logger.isEnabledFor(level):
            return False
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.interval:
            if window is not None and window[2]:
                self.logger.log(level, "%d more like %r suppressed in the last %.0f s",
                                int(window[2]), key, now - window[0])
            if window is None and len(self._windows) >= self.max_keys:
                self._windows.clear()  # keys come from a small fixed set; this is a backstop
            window = [now, 0.0, 0.0]
            self._windows[key] = window
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def info(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.INFO, key, msg, *args)
