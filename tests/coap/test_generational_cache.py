"""The two-generation cache behind duplicate detection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.coap.generational_cache import MISSING, GenerationalCache


def test_replace_updates_a_remembered_key_only() -> None:
    cache: GenerationalCache[str] = GenerationalCache(lifetime=10.0, capacity=100)
    assert cache.get("k") is MISSING
    cache.add("k", "first", 0.0)
    cache.replace("k", "reply")
    cache.replace("other", "x")
    assert cache.get("k") == "reply" and cache.get("other") is MISSING


@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 5)), max_size=80))
def test_keys_last_at_least_one_lifetime_within_capacity(
        arrivals: list[tuple[int, float]]) -> None:
    lifetime, capacity = 10.0, 16
    cache: GenerationalCache[float] = GenerationalCache(lifetime, capacity)
    now = 0.0
    first_seen: dict[int, float] = {}
    added_since: list[int] = []
    for key, gap in arrivals:
        now += gap
        got = cache.get(key)
        if got is MISSING:
            cache.add(key, now, now)
            first_seen[key] = now
            added_since.append(key)
        else:
            assert got == first_seen[key]
        # Anything added within the last lifetime, and among the last capacity/2 new keys,
        # is still known.
        recent = [k for k in added_since[-(capacity // 2):] if now - first_seen[k] < lifetime]
        assert all(cache.get(k) is not MISSING for k in recent)
        assert len(cache) <= capacity
