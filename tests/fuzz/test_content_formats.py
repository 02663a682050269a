"""Every content-format decoder on hostile payloads: a node or a CodecError, quickly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiolwm2m.lwm2m import (
    SUPPORTED_FORMATS,
    ContentFormat,
    LwM2MError,
    LwM2MPath,
    ModelRegistry,
    decode_composite,
    decode_node,
    decode_paths,
    decode_timestamped,
)
from aiolwm2m.lwm2m.formats import decode_create

from .harness import FUZZ, survives
from .strategies import (
    blobs,
    cbor_payloads,
    lwm2m_json_payloads,
    senml_cbor_payloads,
    senml_json_payloads,
    text_values,
    tlv_payloads,
)

CF = ContentFormat
FULL = ModelRegistry.with_core_objects()
# The view of a client announcing Cellular Connectivity 1.1: resources of 1.0 are unknown.
PINNED = FULL.pinned({10: "1.1", 3: "1.0"})
MODELS = st.sampled_from([FULL, PINNED, None])
PATHS = st.sampled_from([LwM2MPath.parse(p) for p in (
    "/", "/3", "/3/0", "/3/0/0", "/3/0/7", "/3/0/7/1", "/3/0/13", "/10/0", "/10/0/6",
    "/3303", "/3303/0", "/3303/0/5700", "/5/0/0", "/9999/0", "/9999/0/1/2")])

# The payloads each format is fed: its own near misses, plus raw bytes.
PAYLOADS = {
    CF.TEXT: text_values(),
    CF.OPAQUE: blobs(),
    CF.CBOR: cbor_payloads(),
    CF.TLV: tlv_payloads(),
    CF.OLD_TLV: tlv_payloads(),
    CF.LWM2M_JSON: lwm2m_json_payloads(),
    CF.OLD_JSON: lwm2m_json_payloads(),
    CF.SENML_JSON: senml_json_payloads(),
    CF.SENML_CBOR: senml_cbor_payloads(),
    CF.LWM2M_CBOR: cbor_payloads(),
}
assert set(PAYLOADS) == set(SUPPORTED_FORMATS)
FORMAT_AND_PAYLOAD = st.sampled_from(sorted(PAYLOADS)).flatmap(
    lambda fmt: st.tuples(st.just(fmt), PAYLOADS[fmt]))


@FUZZ
@given(FORMAT_AND_PAYLOAD, PATHS, MODELS)
def test_decode_node(case: tuple[int, bytes], path: LwM2MPath, model: ModelRegistry | None
                     ) -> None:
    fmt, payload = case
    survives(LwM2MError, decode_node, fmt, payload, path, model)
    # Twice: the second call meets the layouts and shapes the first one cached.
    survives(LwM2MError, decode_node, fmt, payload, path, model)


@FUZZ
@given(FORMAT_AND_PAYLOAD, PATHS, MODELS, st.integers(min_value=0, max_value=65534))
def test_decode_timestamped_and_create(case: tuple[int, bytes], path: LwM2MPath,
                                       model: ModelRegistry | None, free_id: int) -> None:
    fmt, payload = case
    survives(LwM2MError, decode_timestamped, fmt, payload, path, model)
    survives(LwM2MError, decode_create, fmt, payload, LwM2MPath(path[0] if path else 3),
             model, free_id)


@FUZZ
@given(FORMAT_AND_PAYLOAD, st.lists(PATHS, max_size=4) | st.none(), MODELS)
def test_decode_composite_and_path_lists(case: tuple[int, bytes],
                                         paths: list[LwM2MPath] | None,
                                         model: ModelRegistry | None) -> None:
    fmt, payload = case
    survives(LwM2MError, decode_composite, fmt, payload, paths, model)
    survives(LwM2MError, decode_paths, fmt, payload)


@FUZZ
@given(st.integers(), st.sampled_from([0, 14_400, 60_000]), blobs(), PATHS)
def test_unknown_content_format_numbers(number: int, huge_bits: int, payload: bytes,
                                        path: LwM2MPath) -> None:
    # Any number, up to ones with no decimal repr (made here: hypothesis prints its values).
    fmt = number + (1 << huge_bits if huge_bits else 0)
    survives(LwM2MError, decode_node, fmt, payload, path, FULL)
    survives(LwM2MError, decode_composite, fmt, payload, None, FULL)
    survives(LwM2MError, decode_timestamped, fmt, payload, path, FULL)
