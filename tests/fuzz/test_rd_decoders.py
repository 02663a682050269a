"""The Resource Directory's decoders on hostile input: registration parameters, links,
lookup queries, link-patch documents and the /rd routing rule answer with a value or an
RdError (4.xx), quickly; applying a patch never raises anything else."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.rd.errors import RdError
from aiolwm2m.rd.links import parse_links
from aiolwm2m.rd.lookup import parse_lookup
from aiolwm2m.rd.params import parse_rd_register, parse_rd_update
from aiolwm2m.rd.patch import apply_patch, parse_patch
from aiolwm2m.rd.routing import looks_like_object_list
from aiolwm2m.rd.uri import resolve
from aiolwm2m.store.rd_records import RdLink

from .harness import FUZZ, MAX_INPUT, survives
from .strategies import blobs, cbor_payloads, digit_strings, link_documents

_VALUES = st.one_of(digit_strings(), st.text(max_size=80),
                    st.sampled_from(["coap://h", "coap://[::1]:5683/p", "x*", "*", ""]))
QUERY_ITEM = st.one_of(
    st.builds(lambda k, v: f"{k}={v}",
              st.sampled_from(["ep", "d", "lt", "base", "et", "page", "count", "rt", "href",
                               "anchor", "x", ""]), _VALUES),
    st.sampled_from(["ep", "d", "lt", "=", "base=", "page", "count="]),
    st.text(max_size=40),
)
QUERIES = st.lists(QUERY_ITEM, max_size=20)
LINKS = st.one_of(link_documents().map(str.encode), blobs())
JSON_PATCHES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.sampled_from(
                                ["add", "remove", "update", "/a", "/b", "rt", "obs", "x"]),
                                inner, max_size=5)),
    max_leaves=30).map(lambda doc: json.dumps(doc).encode())
CURRENT = (RdLink("/a", (("rt", "x"), ("obs", None))), RdLink("/b"))


@FUZZ
@given(QUERIES)
def test_register_and_update_parameters(query: list[str]) -> None:
    survives(RdError, parse_rd_register, query, default_lifetime=90000)
    survives(RdError, parse_rd_register, query, default_lifetime=90000, base_allowed=False)
    survives(RdError, parse_rd_update, query, "ep", "d")


@FUZZ
@given(LINKS, st.sampled_from([None, 40, 0, 50]))
def test_links(payload: bytes, content_format: int | None) -> None:
    survives(RdError, parse_links, payload[:MAX_INPUT], content_format, max_links=1000,
             max_bytes=MAX_INPUT)
    survives((), looks_like_object_list, payload[:MAX_INPUT])


@FUZZ
@given(QUERIES)
def test_lookup_queries(query: list[str]) -> None:
    survives(RdError, parse_lookup, query, max_results=256)


@FUZZ
@given(st.one_of(JSON_PATCHES, blobs(), cbor_payloads()), st.sampled_from([50, 60, None]))
def test_link_patches(payload: bytes, content_format: int | None) -> None:
    patch = survives(RdError, parse_patch, payload, content_format, max_links=1000,
                     max_bytes=MAX_INPUT)
    if patch is not None:
        survives(RdError, apply_patch, CURRENT, patch)


@FUZZ
@given(st.text(max_size=200))
def test_reference_resolution(ref: str) -> None:
    survives((), resolve, "coap://[2001:db8::1]:5683/dev/x", ref)
