"""A bounded cache of recent keys for duplicate detection over EXCHANGE_LIFETIME.

Two generations of plain dicts replace per-entry timestamps and timers: new keys go into the
young generation, lookups consult both, and the old generation is dropped whole when the young
one is rotated, once per lifetime. An entry is therefore remembered for between one and two
lifetimes, at the cost of one dict store per message and no timer. When the young generation
reaches half the capacity, rotation happens early: memory stays bounded under any load, and
what an overload costs is only the oldest duplicate protection.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, Generic, TypeVar

V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class GenerationalCache(Generic[V]):
    """Remembers keys for at least ``lifetime`` seconds in at most ``capacity`` entries."""

    __slots__ = ("_capacity", "_old", "_period", "_rotate_at", "_young")

    def __init__(self, lifetime: float, capacity: int = 65536, now: float = 0.0) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self._period = lifetime
        self._capacity = capacity // 2
        self._young: dict[Hashable, V] = {}
        self._old: dict[Hashable, V] = {}
        self._rotate_at = now + lifetime

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: Hashable) -> V | _Missing:
        young = self._young
        if key in young:
            return young[key]
        old = self._old
        if key in old:
            return old[key]
        return MISSING

    def add(self, key: Hashable, value: V, now: float) -> None:
        if now >= self._rotate_at or len(self._young) >= self._capacity:
            self._rotate(now)
        self._young[key] = value

    def replace(self, key: Hashable, value: V) -> None:
        """Update a key added earlier (no-op if it was rotated out meanwhile)."""
        if key in self._young:
            self._young[key] = value
        elif key in self._old:
            self._old[key] = value

    def pop(self, key: Hashable) -> V | _Missing:
        if key in self._young:
            return self._young.pop(key)
        if key in self._old:
            return self._old.pop(key)
        return MISSING

    def _rotate(self, now: float) -> None:
        self._old = self._young
        self._young = {}
        self._rotate_at = now + self._period
