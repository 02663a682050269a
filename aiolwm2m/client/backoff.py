"""Retry delays for registration and bootstrap: exponential back-off with jitter.

Sans-IO: the schedule is a pure function of the policy, the attempt number and a random
source, so tests can fix the seed and assert the exact delays. Every delay is at least
``policy.minimum`` seconds, which is what rules out a busy loop against a dead server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``initial * factor**n`` seconds before retry ``n`` (capped at ``maximum``), spread by
    ``±jitter`` (a fraction) so that a fleet restarting together does not retry together.

    ``attempts_before_fallback`` failed registrations in a row make the client fall back to
    the bootstrap server when it has one (LwM2M 1.1 "Bootstrap on Registration Failure",
    with the Communication Retry Count of the Server object as the default count).
    """

    initial: float = 5.0
    factor: float = 2.0
    maximum: float = 600.0
    jitter: float = 0.5
    minimum: float = 0.5
    attempts_before_fallback: int = 5

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.minimum <= 0:
            raise ValueError("retry delays must be positive")
        if self.factor < 1.0:
            raise ValueError("the back-off factor must be at least 1")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")
        if self.maximum < self.initial:
            raise ValueError("maximum must not be below initial")

    def base_delay(self, attempt: int) -> float:
        """The delay before retry ``attempt`` (0-based) without jitter."""
        return min(self.maximum, self.initial * self.factor ** min(attempt, 64))


class Backoff:
    """Counts consecutive failures and hands out the next delay."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.failures = 0

    def next_delay(self) -> float:
        p = self.policy
        base = p.base_delay(self.failures)
        self.failures += 1
        spread = 1.0 + p.jitter * (2.0 * self.rng.random() - 1.0)
        return max(p.minimum, base * spread)

    def reset(self) -> None:
        self.failures = 0

    @property
    def exhausted(self) -> bool:
        """True once ``attempts_before_fallback`` failures happened in a row."""
        n = self.policy.attempts_before_fallback
        return n > 0 and self.failures >= n
