"""A bounded cache of recent keys for duplicate detection over EXCHANGE_LIFETIME.

Two generations of plain dicts replace per-entry timestamps and timers: new keys go into the
young generation, lookups consult both, and the old generation is dropped whole when the young
one is rotated, once per lifetime. An entry is therefore remembered for between one and two
lifetimes, at the cost of one dict store per message and no timer. When the young generation
reaches half the capacity, rotation happens early: memory stays bounded under any load, and
what an overload costs is only the oldest duplicate protection.

Values may also be bounded in bytes: callers say how large each value is, and the young
generation rotates early rather than hold more than half of ``max_bytes``. So a flood of
large cached replies costs at most ``max_bytes`` (plus two values), not entries times reply
size; what it costs the flood's victims is, again, only the oldest duplicate protection.
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
_UNBOUNDED: Final = 1 << 60  # a "short" int for mypyc, and more than any memory


class GenerationalCache(Generic[V]):
    """Remembers keys for at least ``lifetime`` seconds in at most ``capacity`` entries,
    holding about ``max_bytes`` of sized values at most (None: no byte bound)."""

    __slots__ = ("_capacity", "_half_bytes", "_max_bytes", "_old", "_old_bytes", "_period",
                 "_rotate_at", "_young", "_young_bytes")

    def __init__(self, lifetime: float, capacity: int = 65536, now: float = 0.0,
                 max_bytes: int | None = None) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        if max_bytes is not None and max_bytes < 2:
            raise ValueError("max_bytes must be at least 2")
        self._period = lifetime
        self._capacity = capacity // 2
        # Without a byte bound, sizes are still summed but never reach the limits. Ints, not
        # an infinite float: add() compares on every message, and int compares are cheaper.
        self._max_bytes = _UNBOUNDED if max_bytes is None else max_bytes
        self._half_bytes = self._max_bytes // 2
        self._young: dict[Hashable, V] = {}
        self._old: dict[Hashable, V] = {}
        self._young_bytes = 0
        self._old_bytes = 0
        self._rotate_at = now + lifetime

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    @property
    def byte_count(self) -> int:
        """The sizes of the stored values, as their callers gave them."""
        return self._young_bytes + self._old_bytes

    def get(self, key: Hashable) -> V | _Missing:
        young = self._young
        if key in young:
            return young[key]
        old = self._old
        if key in old:
            return old[key]
        return MISSING

    def add(self, key: Hashable, value: V, now: float, size: int = 0) -> None:
        if (now >= self._rotate_at or len(self._young) >= self._capacity
                or self._young_bytes >= self._half_bytes):
            self._rotate(now)
        self._young[key] = value
        self._young_bytes += size

    def replace(self, key: Hashable, value: V, now: float, size: int = 0) -> bool:
        """Give a key added earlier its value (a reply, ``size`` bytes); False, and nothing
        stored, if the key was rotated out meanwhile. The key moves to the young
        generation, rotated first when the value would take it over its share of
        ``max_bytes``: the newest replies are the ones worth keeping. (The size of a
        value replaced keeps counting until its generation goes: an over-estimate, and
        a key gets one reply.)"""
        young = self._young
        if key in young:
            del young[key]
        elif self._old.pop(key, MISSING) is MISSING:
            return False
        if size and young and self._young_bytes + size > self._half_bytes:
            self._rotate(now)
        self._young[key] = value
        self._young_bytes += size
        return True

    def pop(self, key: Hashable) -> V | _Missing:
        if key in self._young:
            return self._young.pop(key)
        if key in self._old:
            return self._old.pop(key)
        return MISSING

    def _rotate(self, now: float) -> None:
        self._old = self._young
        self._old_bytes = self._young_bytes
        self._young = {}
        self._young_bytes = 0
        self._rotate_at = now + self._period
