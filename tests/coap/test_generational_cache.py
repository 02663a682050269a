"""The two-generation cache behind duplicate detection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.coap.generational_cache import MISSING, GenerationalCache


def test_replace_updates_a_remembered_key_only() -> None:
    cache: GenerationalCache[str] = GenerationalCache(lifetime=10.0, capacity=100)
    assert cache.get("k") is MISSING
    cache.add("k", "first", 0.0)
    assert cache.replace("k", "reply", 0.0)
    assert not cache.replace("other", "x", 0.0)
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


def test_bytes_are_bounded_and_the_newest_replies_kept() -> None:
    cache: GenerationalCache[bytes | None] = GenerationalCache(
        lifetime=100.0, capacity=1 << 20, max_bytes=10_000)
    for i in range(1000):  # 1000 requests, each answered with 500 bytes: 500 KB
        cache.add(i, None, 0.0)
        assert cache.replace(i, bytes(500), 0.0, 500)
        assert cache.byte_count <= 10_000 + 2 * 500
    held = [k for k in range(1000) if isinstance(cache.get(k), bytes)]
    assert sum(500 for _ in held) == cache.byte_count
    assert held[-1] == 999 and len(held) >= 10  # the newest are kept, old ones went
    # Keys whose replies went are forgotten whole, not kept without their reply.
    assert all(cache.get(k) is MISSING for k in range(held[0]))


def test_a_late_reply_moves_its_key_to_the_young_generation() -> None:
    cache: GenerationalCache[bytes | None] = GenerationalCache(lifetime=10.0, capacity=100)
    cache.add("slow", None, 0.0)
    cache.add("other", None, 10.0)  # rotation: "slow" is in the old generation now
    assert cache.replace("slow", b"reply", 12.0, 5)
    cache.add("third", None, 20.0)  # rotation: the old generation (with "other") goes
    assert cache.get("slow") == b"reply" and cache.get("other") is None
    cache.add("fourth", None, 30.0)
    assert cache.get("other") is MISSING


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 3000)), max_size=200))
def test_byte_count_never_exceeds_the_budget_by_more_than_two_values(
        replies: list[tuple[int, int]]) -> None:
    budget = 8000
    cache: GenerationalCache[bytes | None] = GenerationalCache(100.0, 1000, 0.0, budget)
    for i, (key, size) in enumerate(replies):
        if cache.get(key) is MISSING:
            cache.add(key, None, float(i))
        cache.replace(key, bytes(size), float(i), size)
        assert cache.byte_count <= budget + 2 * 3000
