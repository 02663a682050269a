"""The end-device prefix rewriting of payload names (``prefixed_names``) and the prefixed
path parser on hostile input: an answer or an LwM2MError, quickly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.lwm2m import ContentFormat, LwM2MError
from aiolwm2m.lwm2m.formats.prefixed_names import (
    add_prefix,
    join,
    split_by_prefix,
    strip_prefix,
)
from aiolwm2m.lwm2m.prefixed_path import parse_prefixed

from .harness import FUZZ, survives
from .strategies import (
    blobs,
    cbor_payloads,
    lwm2m_json_payloads,
    path_texts,
    senml_cbor_payloads,
    senml_json_payloads,
    texts,
)

CF = ContentFormat
PAYLOADS = st.one_of(
    st.tuples(st.just(CF.SENML_JSON), st.one_of(senml_json_payloads(), blobs())),
    st.tuples(st.just(CF.SENML_CBOR), st.one_of(senml_cbor_payloads(), blobs())),
    st.tuples(st.just(CF.LWM2M_CBOR), st.one_of(cbor_payloads(), blobs())),
    st.tuples(st.just(CF.LWM2M_JSON), st.one_of(lwm2m_json_payloads(), blobs())))
PREFIXES = st.sampled_from(["dev1", "a", "x~y", "n-1.2_3"])


@FUZZ
@given(PAYLOADS, PREFIXES)
def test_rename_survives_hostile_payloads(case: tuple[int, bytes], prefix: str) -> None:
    fmt, payload = case
    added = survives(LwM2MError, add_prefix, fmt, payload, prefix)
    survives(LwM2MError, strip_prefix, fmt, payload, prefix)
    if added is not None:
        # What was added comes off again, whatever the payload held.
        assert survives(LwM2MError, strip_prefix, fmt, added, prefix) is not None
    if fmt in (CF.SENML_JSON, CF.SENML_CBOR):
        groups = survives(LwM2MError, split_by_prefix, fmt, payload)
        if groups is not None:
            survives(LwM2MError, join, fmt, list(groups.values()))


@FUZZ
@given(st.one_of(path_texts(), texts()))
def test_prefixed_paths_parse_or_refuse(text: str) -> None:
    survives(LwM2MError, parse_prefixed, text)
