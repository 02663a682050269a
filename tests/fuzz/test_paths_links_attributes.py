"""Paths, link format (Discover and the Register object list), notification attributes and
the REST API's node values on hostile text: a value or the layer's own error, quickly."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
from aiolwm2m.lwm2m import (
    InvalidAttribute,
    InvalidPath,
    LwM2MError,
    LwM2MPath,
    ModelRegistry,
    parse_write_attributes,
)
from aiolwm2m.lwm2m.attributes import ATTRIBUTE_NAMES
from aiolwm2m.lwm2m.formats import decode_discover, decode_object_list
from aiolwm2m.lwm2m.node_builder import build_node

from .harness import FUZZ, survives
from .strategies import (
    BIG_INTS,
    blobs,
    digit_strings,
    link_documents,
    param,
    path_texts,
    texts,
)

MODEL = ModelRegistry.with_core_objects()
@FUZZ
@given(st.one_of(path_texts(), texts()))
def test_path_parse(text: str) -> None:
    survives(InvalidPath, LwM2MPath.parse, text)


@FUZZ
@given(st.one_of(link_documents(), blobs().map(lambda b: b.decode("latin-1"))))
def test_link_format_discover_and_object_list(document: str) -> None:
    survives(LinkFormatError, parse_link_format, document)
    survives(LwM2MError, decode_discover, document)
    survives(LwM2MError, decode_object_list, document)
    survives(LwM2MError, decode_object_list, document, max_entries=100)


@FUZZ
@given(st.lists(st.builds(param, st.sampled_from([*ATTRIBUTE_NAMES, "x", ""]),
                          st.one_of(st.none(), digit_strings(), st.text(max_size=12))),
                max_size=8))
def test_write_attributes_query(items: list[str]) -> None:
    survives(InvalidAttribute, parse_write_attributes, items)
    survives(InvalidAttribute, parse_write_attributes, "&".join(items))


_JSON_SCALARS = st.one_of(BIG_INTS, st.floats(), st.text(max_size=12), st.booleans(), st.none())
_JSON_KEYS = st.one_of(digit_strings(), st.text(max_size=6))
JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_JSON_KEYS, inner, max_size=4)),
    max_leaves=20,
)


@FUZZ
@given(st.sampled_from([LwM2MPath.parse(p) for p in (
    "/3", "/3/0", "/3/0/7", "/3/0/7/1", "/3/0/13", "/3303/0", "/9999/0/1")]), JSON_VALUES)
def test_rest_values_to_nodes(path: LwM2MPath, value: Any) -> None:
    # What the REST API's write and create routes build from a request's JSON body.
    survives(LwM2MError, build_node, MODEL, path, value)
