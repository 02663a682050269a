"""The retry schedule: exponential, jittered, capped, never below the minimum."""

from __future__ import annotations

import random

import pytest

from aiolwm2m.client import Backoff, RetryPolicy


def test_schedule_is_exponential_with_bounded_jitter() -> None:
    policy = RetryPolicy(initial=2.0, factor=2.0, maximum=60.0, jitter=0.25)
    b = Backoff(policy, random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    for n, d in enumerate(delays):
        base = min(60.0, 2.0 * 2**n)
        assert base * 0.75 <= d <= base * 1.25
    assert max(delays) <= 75.0
    again = Backoff(policy, random.Random(7))
    assert [again.next_delay() for _ in range(8)] == delays  # seeded: reproducible
    b.reset()
    assert b.next_delay() <= 2.5


def test_never_a_busy_loop() -> None:
    b = Backoff(RetryPolicy(initial=0.001, minimum=0.5, jitter=0.9), random.Random(1))
    assert min(b.next_delay() for _ in range(50)) >= 0.5


def test_fallback_count_and_validation() -> None:
    b = Backoff(RetryPolicy(attempts_before_fallback=3), random.Random(0))
    for _ in range(2):
        b.next_delay()
    assert not b.exhausted
    b.next_delay()
    assert b.exhausted
    with pytest.raises(ValueError):
        RetryPolicy(initial=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.0)
