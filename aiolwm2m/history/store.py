"""The values store interface. Every implementation passes tests/store/test_values_contract.py.

Written for a server that sees many values and is asked about few of them: recording takes
the values of one response at a time and never waits (a store that persists writes them in
the background, in batches), reading is a coroutine. Reads see every sample recorded
before them, written yet or not. Retention is the store's: samples older than ``max_age``
seconds go, and beyond ``max_samples`` samples the earliest recorded go first; the latest
value of each resource is kept as long as samples are (by age, and at most ``max_samples``
of them).

The interface asks only for what a key-value store with sorted sets (Redis) or a
time-series database can answer directly: samples by device and path prefix in a time range,
newest first up to a limit, and the newest sample of each path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .samples import PathValue, ValueSample

#: The most samples one history query may ask for.
MAX_QUERY_SAMPLES = 10_000


class QueryTooBroad(ValueError):
    """A query that would go through too many values; the message says what to narrow."""


@dataclass(frozen=True)
class Retention:
    #: Samples (and latest values) older than this many seconds are dropped.
    max_age: float = 7 * 86400.0
    #: At most this many samples are kept (the earliest recorded go first), and at most
    #: this many latest values (the oldest go first).
    max_samples: int = 1_000_000
    #: How often retention is applied, in seconds.
    prune_interval: float = 60.0


@dataclass
class ValueStoreStats:
    recorded: int = 0
    #: Samples not kept: the store could not keep up (or its writer was down).
    dropped: int = 0


class ValueStore(Protocol):
    """``endpoint`` may be an ``EndDeviceName``: stores key devices by
    :func:`~aiolwm2m.history.device_key.device_key`, which keeps an end device apart from an
    ordinary device whose endpoint name is the same text."""

    @property
    def retention(self) -> Retention: ...

    @property
    def stats(self) -> ValueStoreStats: ...

    def record(self, endpoint: str, time: float, source: str, values: Sequence[PathValue]
               ) -> None:
        """Keep ``values`` of ``endpoint``, all of one ``time`` and ``source`` (what one
        response, notification or Send group carries); never waits."""

    async def latest(self, endpoint: str, prefix: str = "") -> list[ValueSample]:
        """The newest sample of each path at or under ``prefix``, by path."""

    async def history(self, endpoint: str, prefix: str = "", since: float | None = None,
                      until: float | None = None, limit: int = 1000) -> list[ValueSample]:
        """Samples at or under ``prefix`` with ``since <= time <= until``: the newest
        ``limit`` of them (at most :data:`MAX_QUERY_SAMPLES`), oldest first. A store may
        refuse a query that would go through too much with :class:`QueryTooBroad`."""

    async def forget(self, endpoint: str) -> None:
        """Drop everything kept for ``endpoint``."""

    async def prune(self, now: float) -> None:
        """Apply the retention (stores also do it every ``prune_interval`` by themselves
        when :meth:`start` was called)."""

    async def flush(self) -> None:
        """Until every sample recorded so far is durable (for stores that persist)."""

    def start(self) -> None:
        """Begin pruning every ``retention.prune_interval`` (needs a running loop)."""

    async def close(self) -> None: ...
