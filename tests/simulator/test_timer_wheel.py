"""The fleet's timer wheel: each device wakes once, at or after its time."""

from __future__ import annotations

from aiolwm2m.simulator.timer_wheel import TimerWheel


class Item:
    def __init__(self, name: str) -> None:
        self.name = name
        self.wake_at = 0.0


def test_due_items_in_time_order_and_stale_entries_skipped() -> None:
    wheel = TimerWheel(0.1)
    a, b, c = Item("a"), Item("b"), Item("c")
    wheel.schedule(a, 1.0)
    wheel.schedule(b, 0.5)
    wheel.schedule(c, 2.0)
    wheel.schedule(a, 3.0)  # rescheduled: the entry at 1.0 is stale
    assert [i.name for i in wheel.due(0.55)] == []  # ticks round up: never early
    assert [i.name for i in wheel.due(0.65)] == ["b"]  # type: ignore[attr-defined]
    assert [i.name for i in wheel.due(2.5)] == ["c"]  # type: ignore[attr-defined]
    assert [i.name for i in wheel.due(3.2)] == ["a"]  # type: ignore[attr-defined]
    assert list(wheel.due(100)) == [] and wheel.next_time() is None


def test_cancel() -> None:
    wheel = TimerWheel(0.1)
    a = Item("a")
    wheel.schedule(a, 1.0)
    wheel.cancel(a)
    assert list(wheel.due(5)) == []
