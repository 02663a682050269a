"""A heap of deadlines keyed by id, for registration lifetimes and queue-mode awake windows.

Rescheduling a key pushes a new entry and leaves the old one to be skipped when it surfaces,
so an Update costs one heap push and nothing is ever scanned.
"""

from __future__ import annotations

import heapq


class DeadlineHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._current: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, key: str, deadline: float) -> None:
        self._current[key] = deadline
        heapq.heappush(self._heap, (deadline, key))

    def cancel(self, key: str) -> None:
        self._current.pop(key, None)

    def deadline(self, key: str) -> float | None:
        return self._current.get(key)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, key = heap[0]
            if self._current.get(key) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> list[str]:
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            if self._current.get(key) == deadline:
                del self._current[key]
                due.append(key)
        return due
