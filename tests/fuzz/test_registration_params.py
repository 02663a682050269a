"""Register and Update parameters (query and object list) on hostile input: parameters or a
RegistrationError (4.xx), quickly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.server.registration_params import (
    RegistrationError,
    parse_register,
    parse_update,
)

from .harness import FUZZ, survives
from .strategies import blobs, digit_strings, link_documents

_VALUES = st.one_of(digit_strings(), st.text(max_size=12),
                    st.sampled_from(["1.0", "1.1", "1.2", "U", "UQ", "T", "UU", "", "dev"]))
QUERY_ITEM = st.one_of(
    st.builds(lambda k, v: f"{k}={v}",
              st.sampled_from(["ep", "lt", "lwm2m", "b", "sms", "Q", "x", ""]), _VALUES),
    st.sampled_from(["Q", "ep", "lt", "=", "b="]),
    st.text(max_size=40),
)
PAYLOADS = st.one_of(link_documents().map(str.encode), blobs())
FORMATS = st.sampled_from([None, 40, 0, 110, 65535])


@FUZZ
@given(st.lists(QUERY_ITEM, max_size=8), PAYLOADS, FORMATS)
def test_register(query: list[str], payload: bytes, content_format: int | None) -> None:
    survives(RegistrationError, parse_register, query, payload, content_format,
             accepted_versions=frozenset({"1.0", "1.1"}), default_lifetime=86400,
             max_objects=1000, max_payload=32 * 1024)


@FUZZ
@given(st.lists(QUERY_ITEM, max_size=8), PAYLOADS, FORMATS, st.sampled_from(["1.0", "1.1"]))
def test_update(query: list[str], payload: bytes, content_format: int | None,
                version: str) -> None:
    survives(RegistrationError, parse_update, query, payload, content_format, version, "dev",
             max_objects=1000, max_payload=32 * 1024)
