"""Deadlines keyed by id, for registration lifetimes and queue-mode awake windows.

A timer wheel of short slots: scheduling, moving and cancelling a deadline are set
operations, so an Update (which moves its registration's deadline) costs no heap work and
leaves no per-key entry behind. Only the slots themselves are ordered, in a heap with one
entry per slot ever used (a few per second of deadlines), emptied as time passes them.
"""

from __future__ import annotations

import heapq

# Seconds per slot. The slot a time falls in is found with a multiplication and a floor;
# a slot is scanned key by key only while "now" lies inside it.
SLOT = 1 / 16


class Deadlines:
    def __init__(self) -> None:
        self._current: dict[str, float] = {}
        self._slots: dict[int, set[str]] = {}
        self._order: list[int] = []  # heap of the indexes in _slots

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, key: str, deadline: float) -> None:
        """Set (or move) the deadline of ``key``."""
        old = self._current.get(key)
        if old is not None:
            self._discard(key, old)
        self._current[key] = deadline
        index = int(deadline // SLOT)
        members = self._slots.get(index)
        if members is None:
            members = self._slots[index] = set()
            order = self._order
            heapq.heappush(order, index)
            # Slots vacated by moved deadlines leave their index in the heap until it
            # surfaces, which for a day-long lifetime is a day; rebuild before they pile up.
            if len(order) > 2 * len(self._slots) + 64:
                self._order = sorted(self._slots)
        members.add(key)

    def cancel(self, key: str) -> None:
        old = self._current.pop(key, None)
        if old is not None:
            self._discard(key, old)

    def _discard(self, key: str, deadline: float) -> None:
        index = int(deadline // SLOT)
        members = self._slots[index]
        members.discard(key)
        if not members:
            del self._slots[index]  # its heap entry is skipped when it surfaces

    def deadline(self, key: str) -> float | None:
        return self._current.get(key)

    def _first_slot(self) -> tuple[int, set[str]] | None:
        order, slots = self._order, self._slots
        while order:
            members = slots.get(order[0])
            if members:
                return order[0], members
            heapq.heappop(order)
        return None

    def next_deadline(self) -> float | None:
        first = self._first_slot()
        if first is None:
            return None
        current = self._current
        return min(current[k] for k in first[1])

    def pop_due(self, now: float) -> list[str]:
        """The keys whose deadline is at or before ``now``, earliest first; they are
        forgotten."""
        due: list[str] = []
        current = self._current
        while (first := self._first_slot()) is not None and first[0] * SLOT <= now:
            index, members = first
            if (index + 1) * SLOT <= now:
                taken = sorted(members, key=current.__getitem__)
                heapq.heappop(self._order)
                del self._slots[index]
            else:
                # "now" is inside this slot: only some of it is due, and nothing after it.
                taken = sorted((k for k in members if current[k] <= now),
                               key=current.__getitem__)
                members.difference_update(taken)
                if not members:
                    del self._slots[index]
            for key in taken:
                del current[key]
            due.extend(taken)
            if (index + 1) * SLOT > now:
                break
        return due
