"""The firmware service's decoders on hostile input: HTTP Range headers (from devices),
the client's HTTP response heads (from download servers), upload metadata and campaign
target specifications (from API users) answer with a value or their own refusal, quickly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.client.firmware_download import parse_response_head
from aiolwm2m.firmware.delivery import parse_range
from aiolwm2m.firmware.errors import BadImage, BadRequest
from aiolwm2m.firmware.images import check_metadata
from aiolwm2m.firmware.targets import resolve
from aiolwm2m.store.records import ObjectLinkEntry, Registration

from .harness import FUZZ, survives
from .strategies import BIG_INTS, blobs, digit_strings

RANGE_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.one_of(digit_strings(), st.text(max_size=8)),
              st.one_of(digit_strings(), st.text(max_size=8))),
    st.builds(lambda n: "bytes=" + ",".join(["0-1"] * n), st.integers(0, 5000)),
)


@FUZZ
@given(st.one_of(st.none(), RANGE_TEXT), st.integers(min_value=0, max_value=1 << 40))
def test_range(header: str | None, size: int) -> None:
    result = survives((), parse_range, header, size)
    if isinstance(result, tuple):
        start, end = result
        assert 0 <= start < end <= size


HEADS = st.one_of(
    blobs(),
    st.builds(lambda status, lines: f"HTTP/1.1 {status} X\r\n{lines}\r\n\r\n".encode(),
              st.text(max_size=5), st.text(max_size=400)),
)


@FUZZ
@given(HEADS)
def test_http_response_head(head: bytes) -> None:
    survives(ValueError, parse_response_head, head)


@FUZZ
@given(st.text(max_size=300), st.text(max_size=300), st.lists(st.text(max_size=300),
                                                              max_size=100),
       st.one_of(st.none(), st.text(max_size=80)))
def test_upload_metadata(name: str, version: str, types: list[str], sha: str | None) -> None:
    survives(BadImage, check_metadata, name, version, types, sha)


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), BIG_INTS, st.floats(), st.text(max_size=30)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=8),
        st.dictionaries(st.sampled_from(["endpoints", "filter", "endpoint", "object",
                                         "object_version", "attributes", "binding",
                                         "group", "x"]), inner, max_size=5)),
    max_leaves=40)
REGISTRATIONS = {
    f"dev-{i}": Registration(f"r{i}", f"dev-{i}", ("::1", 1000 + i), 300,
                             objects=(ObjectLinkEntry(5, 0, "1.1" if i % 2 else None),),
                             extra=(("x", str(i)),))
    for i in range(20)}


@FUZZ
@given(JSON)
def test_campaign_targets(spec: Any) -> None:
    # What the REST API hands over: a JSON object (anything else is refused by pydantic).
    json.dumps(spec)
    if isinstance(spec, dict):
        survives(BadRequest, resolve, spec, REGISTRATIONS)
