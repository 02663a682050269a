"""The deadline wheel behind lifetimes and awake windows, against a plain model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.server.deadlines import SLOT, Deadlines

KEYS = st.sampled_from([f"k{i}" for i in range(12)])
TIMES = st.floats(min_value=0, max_value=20, allow_nan=False).map(lambda t: round(t, 3))
STEPS = st.lists(st.one_of(
    st.tuples(st.just("schedule"), KEYS, TIMES),
    st.tuples(st.just("cancel"), KEYS, st.just(0.0)),
    st.tuples(st.just("pop"), st.just(""), TIMES),
), max_size=60)


@settings(max_examples=300)
@given(STEPS)
def test_behaves_like_a_dict_of_deadlines(steps: list[tuple[str, str, float]]) -> None:
    wheel = Deadlines()
    model: dict[str, float] = {}
    for op, key, t in steps:
        if op == "schedule":
            wheel.schedule(key, t)
            model[key] = t
        elif op == "cancel":
            wheel.cancel(key)
            model.pop(key, None)
        else:
            due = wheel.pop_due(t)
            assert set(due) == {k for k, d in model.items() if d <= t}
            assert [model[k] for k in due] == sorted(model[k] for k in due)  # earliest first
            for k in due:
                del model[k]
        assert len(wheel) == len(model)
        assert wheel.next_deadline() == (min(model.values()) if model else None)
        assert all(wheel.deadline(k) == d for k, d in model.items())


def test_due_exactly_at_the_deadline_and_not_before() -> None:
    wheel = Deadlines()
    wheel.schedule("a", 100.0)  # on a slot boundary
    wheel.schedule("b", 100.0 + SLOT / 3)  # inside the slot
    assert wheel.pop_due(100.0 - 1e-9) == []
    assert wheel.pop_due(100.0) == ["a"]
    assert wheel.pop_due(100.0 + SLOT / 4) == []
    assert wheel.pop_due(100.0 + SLOT / 3) == ["b"]
    assert wheel.next_deadline() is None and len(wheel) == 0


def test_moving_deadlines_far_ahead_keeps_memory_bounded() -> None:
    # Devices with a day-long lifetime updating every few seconds: each Update moves a
    # deadline to a new slot a day away, long before the old slot's time comes.
    wheel = Deadlines()
    for step in range(20_000):
        wheel.schedule(f"dev{step % 10}", 86_400.0 + step * 0.5)
    assert len(wheel) == 10
    assert len(wheel._slots) == 10 and len(wheel._order) <= 2 * 10 + 64 + 1
    assert wheel.next_deadline() == 86_400.0 + 19_990 * 0.5
    assert wheel.pop_due(86_400.0 + 19_995 * 0.5) == [f"dev{i}" for i in range(10)][:6]
    assert wheel.pop_due(200_000.0) == [f"dev{i}" for i in range(6, 10)]
