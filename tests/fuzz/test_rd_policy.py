"""The RD policy decoder (the ``[rd_policy]`` TOML table, the body of ``PUT
/api/rd/policy``) on hostile documents: a policy or a PolicyError, quickly; and what it
accepts round-trips through its plain form."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.rd.policy import PolicyError, parse_policy, policy_to_dict

from .harness import FUZZ, survives

_PATTERNS = st.one_of(st.text(max_size=70), st.sampled_from(["*", "", "a*", "*a", "a*b"]))
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _PATTERNS)
_JSON = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=8),
    st.dictionaries(st.sampled_from(["endpoints", "sectors", "lookup", "x", "*", "psk:a",
                                     "identities", "sector_lookup"]), inner, max_size=5)),
    max_leaves=40)
RULES = st.fixed_dictionaries({}, optional={
    "endpoints": st.one_of(st.lists(_PATTERNS, max_size=6), _JSON),
    "sectors": st.one_of(st.lists(_PATTERNS, max_size=6), _JSON),
    "lookup": st.one_of(st.lists(_PATTERNS, max_size=6), _JSON)})
DOCUMENTS = st.one_of(_JSON, st.fixed_dictionaries({}, optional={
    "anonymous_register": st.one_of(st.booleans(), _LEAVES),
    "anonymous_lookup": st.booleans(), "sector_lookup": st.booleans(),
    "bind_credentials": st.booleans(),
    "identities": st.one_of(st.dictionaries(
        st.one_of(st.text(max_size=20), st.sampled_from(["*", "psk:gw", "rpk:00", "x509:"])),
        st.one_of(RULES, _JSON), max_size=6), _JSON)}))


@FUZZ
@given(DOCUMENTS)
def test_policy_documents(document: Any) -> None:
    policy = survives(PolicyError, parse_policy, document)
    if policy is not None:
        assert parse_policy(policy_to_dict(policy)) == policy
