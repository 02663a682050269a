"""Garbage-collector settings for a long-running server process.

A server keeps one record per registered device for hours, while every request it serves
allocates a few short-lived containers. With CPython's default young-generation threshold
(700 allocations), requests that are waiting for their group commit are still alive at
almost every young collection; they get promoted, and the promotions trip full collections
that walk every registration. At 100,000 endpoints that was a 75 ms pass a few times a
second, a quarter of the server's CPU time under a registration storm (measured with
``bench/bench_registration.py``). A larger young generation lets those requests die young.
"""

from __future__ import annotations

import gc

# Large enough that a burst of a thousand requests in flight fits in the young generation;
# small enough that one young collection stays in the tens of milliseconds.
YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 10


def tune_for_server() -> None:
    """Apply the server's collector thresholds to this process."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
