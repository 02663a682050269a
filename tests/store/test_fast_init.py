"""The faster frozen-dataclass __init__ against the one dataclasses generates."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.store.fast_init import fast_frozen_init


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: str | None = None


@fast_frozen_init
@dataclasses.dataclass(frozen=True, slots=True)
class Fast:
    a: int
    b: str
    c: tuple[int, ...] = ()
    d: str | None = None


@given(st.integers(), st.text(), st.lists(st.integers()).map(tuple),
       st.none() | st.text(), st.booleans())
def test_same_fields_as_the_generated_init(a: int, b: str, c: tuple[int, ...],
                                           d: str | None, by_keyword: bool) -> None:
    fast = Fast(a=a, b=b, c=c, d=d) if by_keyword else Fast(a, b, c, d)
    plain = Plain(a, b, c, d)
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert fast == Fast(a, b, c, d) and hash(fast) == hash(Fast(a, b, c, d))


def test_defaults_errors_and_frozenness() -> None:
    assert dataclasses.astuple(Fast(1, "x")) == (1, "x", (), None)
    with pytest.raises(TypeError):
        Fast(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast(1, "x", nope=2)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fast(1, "x").a = 2  # type: ignore[misc]


def test_refuses_what_it_cannot_copy() -> None:
    @dataclasses.dataclass
    class Mutable:
        a: int

    with pytest.raises(TypeError):
        fast_frozen_init(Mutable)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError):
        fast_frozen_init(Factory)
