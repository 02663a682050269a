"""Topic configurations and filters on hostile input: a configuration or a ConfigError
(4.00 naming the property), quickly."""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.pubsub.cbor_reader import CborError, read_item
from aiolwm2m.pubsub.topic_config import (
    ConfigError,
    TopicConfig,
    decode_properties,
    fetch_keys,
    for_creation,
    patched,
    replaced,
)

from .harness import FUZZ, survives
from .strategies import blobs

_LEAVES = st.one_of(st.integers(min_value=-(2**64), max_value=2**64 - 1), st.text(max_size=20),
                    st.binary(max_size=20), st.booleans(), st.none(), st.floats(),
                    st.builds(cbor2.CBORTag, st.integers(0, 300),
                              st.one_of(st.integers(), st.floats(), st.text(max_size=8))))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.integers(-2, 12), inner, max_size=4)),
    max_leaves=12)
#: Mostly well-formed maps of the draft's keys, so the checks behind the parser run too.
CONFIG_MAPS = st.dictionaries(st.integers(-2, 12), _VALUES, max_size=10).map(cbor2.dumps)
PAYLOADS = st.one_of(CONFIG_MAPS, blobs())
CURRENT = TopicConfig(name="t", data="/ps/data/x")


def _parse(payload: bytes, mode: str) -> Any:
    props = decode_properties(payload, allow_null=mode == "patch")
    if mode == "create":
        return for_creation(props)
    if mode == "replace":
        return replaced(CURRENT, props)
    return patched(CURRENT, props)


@FUZZ
@given(PAYLOADS, st.sampled_from(["create", "replace", "patch"]))
def test_topic_configuration(payload: bytes, mode: str) -> None:
    survives(ConfigError, _parse, payload, mode)


@FUZZ
@given(st.one_of(st.lists(_VALUES, max_size=6).map(cbor2.dumps), CONFIG_MAPS, blobs()),
       st.sampled_from([60, 606, None]))
def test_fetch_filter(payload: bytes, content_format: int | None) -> None:
    survives(ConfigError, fetch_keys, payload, content_format)


@FUZZ
@given(blobs())
def test_cbor_reader(payload: bytes) -> None:
    survives(CborError, read_item, payload)
