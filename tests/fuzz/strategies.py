"""Hypothesis strategies for hostile input: raw bytes and text up to 64 KB, and near misses
(well-formed documents with out-of-range numbers, long names, odd nesting, wrong types)."""

from __future__ import annotations

import json
import struct
from typing import Any

import cbor2
from hypothesis import strategies as st

from .harness import MAX_INPUT

# Numbers where decoders used to break: past int64/uint64, past int()'s 4300-digit limit
# (as text) and past what repr() or float() take (as ints).
# (Ints beyond 4300 digits cannot be in a strategy: hypothesis itself prints them. They
# come as encoded bytes instead, from bignum_payloads and huge_number_json.)
EDGE_INTS = st.sampled_from([
    -1, 0, 1, 255, 256, 65534, 65535, 65536, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
    2**64 - 1, 2**64, -(2**63) - 1, 10**400, -(10**400), 10**4000,
])
BIG_INTS = st.one_of(EDGE_INTS, st.integers(), st.integers(min_value=-(2**80), max_value=2**80))


def _repeat(unit: Any, count: int) -> Any:
    return unit * count


def blobs() -> st.SearchStrategy[bytes]:
    """Bytes: short random ones, long random ones, and long repetitions of a short unit
    (which reach 64 KB cheaply and make the degenerate shapes quadratic code chokes on)."""
    return st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=4096),
        st.builds(_repeat, st.binary(min_size=1, max_size=24),
                  st.integers(min_value=1, max_value=MAX_INPUT // 24)),
    )


def texts(alphabet: str | None = None) -> st.SearchStrategy[str]:
    chars = st.characters() if alphabet is None else st.sampled_from(alphabet)
    return st.one_of(
        st.text(chars, max_size=64),
        st.text(chars, max_size=2048),
        st.builds(_repeat, st.text(chars, min_size=1, max_size=24),
                  st.integers(min_value=1, max_value=MAX_INPUT // 24)),
    )


def digit_strings() -> st.SearchStrategy[str]:
    """Decimal numbers from short to past int()'s 4300-digit limit (the 14.9 crash)."""
    return st.one_of(
        st.integers(min_value=0, max_value=2**70).map(str),
        st.integers(min_value=4290, max_value=4400).map(lambda n: "9" * n),
        st.integers(min_value=6, max_value=30).map(lambda n: "0" * n + "1"),
        st.sampled_from(["", "-1", "+1", "1.5", "1e9", " 1", "1_0", "\u0661", "0x10"]),
    )


def path_texts() -> st.SearchStrategy[str]:
    """Near-miss LwM2M paths: slash-separated numbers, some huge, some not numbers."""
    segment = st.one_of(digit_strings(), st.text(max_size=8))
    return st.one_of(
        st.lists(segment, max_size=6).map(lambda s: "/" + "/".join(s)),
        texts("/0123456789"),
    )


_PARAM_NAMES = ["rt", "ct", "ver", "dim", "pmin", "pmax", "gt", "lt", "st", "epmin", "epmax",
                "con", "hqmax", "if", "obs", "x"]


def param(name: str, value: str | None) -> str:
    """``name=value``, or the bare ``name`` of a value-less parameter."""
    return name if value is None else f"{name}={value}"


def link_documents() -> st.SearchStrategy[str]:
    """Link-format documents with LwM2M targets and parameters, values near their limits."""
    value = st.one_of(st.none(), digit_strings(), st.text(max_size=12),
                      st.sampled_from(['"oma.lwm2m"', '"60 110"', "1.1", '"unterminated']))
    params = st.builds(param, st.sampled_from(_PARAM_NAMES), value)
    link = st.builds(lambda target, items: ";".join([f"<{target}>", *items]),
                     path_texts(), st.lists(params, max_size=4))
    many = st.builds(lambda unit, n: ",".join([unit] * min(n, MAX_INPUT // (len(unit) + 1))),
                     link, st.integers(min_value=1, max_value=5000))
    return st.one_of(st.lists(link, max_size=12).map(",".join), many,
                     texts("<>/;=,\"\\ 0123456789abc"))


# --- documents -----------------------------------------------------------------------------------
_SCALARS = st.one_of(
    BIG_INTS, st.floats(), st.text(max_size=16), st.binary(max_size=16), st.booleans(),
    st.none(),
)
_KEYS = st.one_of(BIG_INTS, st.text(max_size=8),
                  st.lists(st.integers(min_value=-2, max_value=70000), max_size=6).map(tuple))


def cbor_items() -> st.SearchStrategy[Any]:
    """Nested CBOR items: maps keyed by ids, id arrays or text; huge integers included."""
    return st.recursive(
        _SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=6),
            st.dictionaries(_KEYS, inner, max_size=6),
        ),
        max_leaves=40,
    )


def cbor_payloads() -> st.SearchStrategy[bytes]:
    def dump(item: Any) -> bytes:
        try:
            return cbor2.dumps(item)
        except (ValueError, TypeError, OverflowError):
            return b"\xa0"

    deep = st.integers(min_value=1, max_value=3000).map(lambda n: b"\xa1\x01" * n + b"\x01")
    return st.one_of(cbor_items().map(dump), deep, bignum_payloads(), blobs())


_SENML_LABELS = ["bn", "bt", "n", "t", "v", "vs", "vb", "vd", "vlo", "u", "bu", "bver", "ut",
                 "s", "bs", "x_", "x"]
_SENML_CBOR_LABELS = [-2, -3, 0, 6, 2, 3, 4, 8, "vlo", 1, -4, -1, 7, 5, -5, 99]


def _senml_value(label: Any) -> st.SearchStrategy[Any]:
    if label in ("bn", "n", -2, 0):
        return st.one_of(path_texts(), st.integers(), texts("/0123456789"))
    if label in ("bt", "t", "v", -3, 6, 2):
        return st.one_of(BIG_INTS, st.floats(), st.text(max_size=4))
    return _SCALARS


def senml_records(cbor: bool) -> st.SearchStrategy[list[dict[Any, Any]]]:
    labels = _SENML_CBOR_LABELS if cbor else _SENML_LABELS
    record = st.sampled_from(labels).flatmap(
        lambda first: st.dictionaries(st.sampled_from(labels), _SCALARS, max_size=3).flatmap(
            lambda rest: _senml_value(first).map(lambda v: {first: v, **rest})))
    return st.lists(record, max_size=12)


def senml_json_payloads() -> st.SearchStrategy[bytes]:
    def dump(records: list[dict[Any, Any]]) -> bytes:
        try:
            return json.dumps(records, default=repr).encode()
        except ValueError:  # an int json.dumps refuses to print
            return b"[]"

    return st.one_of(senml_records(cbor=False).map(dump), huge_number_json(), blobs())


def senml_cbor_payloads() -> st.SearchStrategy[bytes]:
    def dump(records: list[dict[Any, Any]]) -> bytes:
        try:
            return cbor2.dumps(records)
        except (ValueError, TypeError, OverflowError):
            return b"\x80"

    return st.one_of(senml_records(cbor=True).map(dump), bignum_payloads(), blobs())


def lwm2m_json_payloads() -> st.SearchStrategy[bytes]:
    entry = st.dictionaries(st.sampled_from(["n", "t", "v", "sv", "bv", "ov", "x"]),
                            st.one_of(_SCALARS, path_texts()), max_size=3)
    document = st.fixed_dictionaries(
        {"e": st.lists(entry, max_size=10)},
        optional={"bn": st.one_of(path_texts(), st.integers()), "bt": BIG_INTS})

    def dump(doc: dict[str, Any]) -> bytes:
        try:
            return json.dumps(doc, default=repr).encode()
        except ValueError:
            return b"{}"

    return st.one_of(document.map(dump), huge_number_json(), blobs())


def tlv_payloads() -> st.SearchStrategy[bytes]:
    """TLVs with every header shape: kinds, 8/16-bit ids, 0-3 length bytes, lengths that
    do and do not match, nested containers."""
    def tlv(kind: int, ident: int, width: int, value: bytes, lie: int) -> bytes:
        first = kind << 6 | (0x20 if ident > 0xFF else 0) | width << 3
        length = max(0, len(value) + lie)
        if width == 0:
            first |= min(length, 7)
            header = bytes((first,))
        else:
            header = bytes((first,)) + length.to_bytes(4, "big")[-width:]
        return header + ident.to_bytes(2 if ident > 0xFF else 1, "big") + value

    leaf = st.builds(tlv, st.integers(0, 3), st.integers(0, 65535), st.integers(0, 3),
                     st.binary(max_size=12), st.sampled_from([0, 0, 0, 1, -1, 200]))
    nested = st.recursive(
        leaf,
        lambda inner: st.builds(
            tlv, st.integers(0, 3), st.integers(0, 65535), st.integers(0, 3),
            st.lists(inner, max_size=5).map(b"".join), st.sampled_from([0, 0, 1, -1])),
        max_leaves=20,
    )
    return st.one_of(st.lists(nested, max_size=8).map(b"".join), blobs())


def text_values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        digit_strings().map(str.encode),
        st.floats().map(lambda f: repr(f).encode()),
        blobs(),
        st.just(struct.pack(">d", 1.5)),
    )


def _bignum(bits: int, negative: bool) -> bytes:
    """A CBOR bignum (tag 2 or 3) of ``bits`` bits, encoded by hand."""
    magnitude = (1 << bits) - 1
    body = magnitude.to_bytes((bits + 7) // 8, "big")
    return bytes((0xC3 if negative else 0xC2,)) + cbor2.dumps(body)


def bignum_payloads() -> st.SearchStrategy[bytes]:
    """CBOR documents with an integer of 14,000+ bits (no decimal repr: int refuses) as a
    value, a map key, an id or a SenML time, in each CBOR-based format's shape."""
    shapes = [
        lambda big: b"\xa1\x82\x0a\x00\xa1\x01" + big,  # LwM2M CBOR {[10, 0]: {1: big}}
        lambda big: b"\xa1\x82\x0a\x00\xa1" + big + b"\x01",  # ... {[10, 0]: {big: 1}}
        lambda big: b"\xa1" + big + b"\x01",  # {big: 1}
        lambda big: b"\x81\xa2\x00\x66/3/0/9\x02" + big,  # SenML [{n: "/3/0/9", v: big}]
        lambda big: b"\x81\xa3\x00\x66/3/0/9\x02\x01\x06" + big,  # ... with t: big
        lambda big: b"\x81\xa3\x22" + big + b"\x00\x66/3/0/9\x02\x01",  # bt: big
        lambda big: big,  # a bare CBOR value (content format 60)
    ]
    return st.builds(lambda shape, bits, negative: shape(_bignum(bits, negative)),
                     st.sampled_from(shapes), st.integers(min_value=14_300, max_value=60_000),
                     st.booleans())


def huge_number_json() -> st.SearchStrategy[bytes]:
    """JSON text with a number of 4,301+ digits where SenML and LwM2M JSON take numbers."""
    templates = [
        b'[{"n":"/3/0/9","v":%s}]', b'[{"bt":%s,"n":"/3/0/9","v":1}]',
        b'[{"n":"/3/0/9","t":%s,"v":1}]', b'[{"n":"/%s/0/9","v":1}]',
        b'{"bn":"/3/0/","bt":%s,"e":[{"n":"9","v":1}]}', b'{"e":[{"n":"/3/0/%s","v":1}]}',
        b'{"bn":"/3/0/","e":[{"n":"9","v":%s}]}', b'%s',
    ]
    return st.builds(lambda template, digits: template % (b"9" * digits),
                     st.sampled_from(templates), st.integers(min_value=4_290, max_value=6_000))
