"""End-device prefixes in payload names (LwM2M Gateway TS: names carry the prefix).

Behind a gateway, ``/dev1/3303/0/5700`` names the Sensor Value of end device ``dev1`` in
SenML JSON and CBOR, LwM2M JSON, and LwM2M CBOR (``{"dev1": {3303: {0: {5700: 21.5}}}}`` or
``{["dev1", 3303, 0]: {...}}``), while the codecs of this package speak plain LwM2M paths.
This module moves payloads between the two, without decoding a value:

* :func:`rename` maps every name of a payload through a function (add or strip a prefix);
* :func:`split_by_prefix` cuts a SenML payload into one payload per prefix (a composite
  request naming several end devices), and :func:`join` puts answers back together.

CBOR is rewritten item by item, copying the bytes of every value as they came (no float
width or tag changes); a SenML record loses its ``bn`` and gets its full name in ``n``. Other
formats (TLV, text, opaque, CBOR, link format) carry no names and pass through. Malformed
input raises :class:`InvalidPayload`; nesting is bounded, work is linear in the payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..errors import InvalidPayload, shown
from .cbor_support import MAJOR_ARRAY, MAJOR_MAP, head, text_item
from .content_format import ContentFormat

__all__ = ["NAMED_FORMATS", "add_prefix", "join", "names", "rename", "split_by_prefix",
           "strip_prefix"]

CF = ContentFormat
#: Formats whose payloads carry names (and so prefixes).
NAMED_FORMATS: Final = frozenset({CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.OLD_JSON,
                                  CF.LWM2M_CBOR})
_SENML: Final = frozenset({CF.SENML_JSON, CF.SENML_CBOR})
# SenML base labels other than bn, carried onto each record when records are regrouped.
_JSON_BASES: Final = ("bt", "bu", "bv", "bs", "bver")
_CBOR_BN, _CBOR_N = -2, 0
_CBOR_BASES: Final = (-3, -4, -5, -6, -1)
# Deep enough for any LwM2M payload (LwM2M CBOR nests object/instance/resource/instance
# maps, SenML values are scalars), shallow enough that a hostile payload costs nothing.
_MAX_DEPTH: Final = 12

Renamer = Callable[[str], str]


def add_prefix(fmt: int, payload: bytes, prefix: str) -> bytes:
    """``payload`` with ``/{prefix}`` in front of every name."""
    if fmt not in NAMED_FORMATS or not payload:
        return payload
    if fmt == CF.LWM2M_CBOR:
        return _wrap_lwm2m_cbor(payload, prefix)
    lead = "/" + prefix
    return rename(fmt, payload, lambda name: lead + name if name.startswith("/") else
                  lead + "/" + name)


def strip_prefix(fmt: int, payload: bytes, prefix: str) -> bytes:
    """``payload`` with the leading ``/{prefix}`` taken off every name that has it (names
    without it are left alone: a lenient reading of a gateway that omits it)."""
    if fmt not in NAMED_FORMATS or not payload:
        return payload
    if fmt == CF.LWM2M_CBOR:
        return _unwrap_lwm2m_cbor(payload, prefix)
    lead = "/" + prefix
    size = len(lead)

    def strip(name: str) -> str:
        if name.startswith(lead) and (len(name) == size or name[size] == "/"):
            return name[size:] or "/"
        return name

    return rename(fmt, payload, strip)


# -- SenML and LwM2M JSON -------------------------------------------------------------------

def rename(fmt: int, payload: bytes, renamer: Renamer) -> bytes:
    """Every name of a SenML or LwM2M JSON payload through ``renamer``."""
    if fmt == CF.SENML_JSON:
        records = [(renamer(name), rest) for name, rest in _json_records(payload, False)]
        return _json_dump([{**rest, "n": name} for name, rest in records])
    if fmt == CF.SENML_CBOR:
        items = [(renamer(name), pairs) for name, pairs in _cbor_records(payload, False)]
        return _cbor_dump(items)
    if fmt in (CF.LWM2M_JSON, CF.OLD_JSON):
        document = _lwm2m_json(fmt, payload)
        base = document.pop("bn", "")
        entries = document.get("e")
        if type(base) is not str or type(entries) is not list:
            raise InvalidPayload(fmt, None, "'bn' must be a string and 'e' an array")
        renamed = []
        for index, entry in enumerate(entries):
            if type(entry) is not dict or type(entry.get("n", "")) is not str:
                raise InvalidPayload(fmt, None, "an entry must be an object with a string "
                                     "'n'", index=index)
            renamed.append({**entry, "n": renamer(base + entry.get("n", ""))})
        document["e"] = renamed
        return json.dumps(document, separators=(",", ":")).encode()
    raise InvalidPayload(fmt, None, "this format carries no names")


def names(fmt: int, payload: bytes) -> list[str]:
    """The full names of a SenML payload's records, in order."""
    if fmt == CF.SENML_JSON:
        return [name for name, _ in _json_records(payload, False)]
    if fmt == CF.SENML_CBOR:
        return [name for name, _ in _cbor_records(payload, False)]
    raise InvalidPayload(fmt, None, "only SenML payloads are split by name")


def split_by_prefix(fmt: int, payload: bytes) -> dict[str | None, bytes]:
    """One SenML payload per prefix (None: names without one), each record with its
    prefix stripped and the base values (``bt``...) it depends on written onto it."""
    groups: dict[str | None, list[tuple[str, Any]]] = {}
    records: Iterable[tuple[str, Any]]
    if fmt == CF.SENML_JSON:
        records = _json_records(payload, True)
    elif fmt == CF.SENML_CBOR:
        records = _cbor_records(payload, True)
    else:
        raise InvalidPayload(fmt, None, "only SenML payloads are split by name")
    for name, rest in records:
        prefix, inner = _split_name(name)
        groups.setdefault(prefix, []).append((inner, rest))
    if fmt == CF.SENML_JSON:
        return {p: _json_dump([{**rest, "n": n} for n, rest in recs])
                for p, recs in groups.items()}
    return {p: _cbor_dump(recs) for p, recs in groups.items()}


def join(fmt: int, payloads: Iterable[bytes]) -> bytes:
    """One payload holding the records (SenML) or entries (LwM2M CBOR) of ``payloads``,
    whose names are already complete (prefixed)."""
    parts = [p for p in payloads if p]
    if len(parts) == 1:
        return parts[0]
    if fmt == CF.SENML_JSON:
        out: list[Any] = []
        for part in parts:
            out.extend({**rest, "n": name} for name, rest in _json_records(part, True))
        return _json_dump(out)
    if fmt == CF.SENML_CBOR:
        return _cbor_dump([r for part in parts for r in _cbor_records(part, True)])
    if fmt == CF.LWM2M_CBOR:
        pairs: list[bytes] = []
        for part in parts:
            pairs.extend(_lwm2m_cbor_pairs(part))
        return head(MAJOR_MAP, len(pairs)) + b"".join(pairs)
    raise InvalidPayload(fmt, None, "cannot join payloads of this format")


def _split_name(name: str) -> tuple[str | None, str]:
    if not name.startswith("/"):
        return None, name
    first, slash, rest = name[1:].partition("/")
    if not first or (first.isascii() and first.isdigit()):
        return None, name
    return first, "/" + rest if slash else "/"


def _json_records(payload: bytes, carry_bases: bool) -> list[tuple[str, dict[str, Any]]]:
    fmt = CF.SENML_JSON
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidPayload(fmt, None, "not UTF-8", offset=exc.start) from None
    except RecursionError:
        raise InvalidPayload(fmt, None, "JSON nesting too deep") from None
    except ValueError as exc:
        raise InvalidPayload(fmt, None, f"malformed JSON: {exc}") from None
    if type(document) is not list:
        raise InvalidPayload(fmt, None, "a SenML pack is an array")
    base = ""
    bases: dict[str, Any] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for index, record in enumerate(document):
        if type(record) is not dict:
            raise InvalidPayload(fmt, None, "a record must be an object", index=index)
        rest = dict(record)
        bn = rest.pop("bn", None)
        if bn is not None:
            if type(bn) is not str:
                raise InvalidPayload(fmt, None, "'bn' is not a string", index=index)
            base = bn
        n = rest.pop("n", "")
        if type(n) is not str:
            raise InvalidPayload(fmt, None, "'n' is not a string", index=index)
        if carry_bases:
            for label in _JSON_BASES:
                if label in rest:
                    bases[label] = rest[label]
            rest = {**bases, **rest}
        out.append((base + n, rest))
    return out


def _json_dump(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, separators=(",", ":")).encode()


def _lwm2m_json(fmt: int, payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidPayload(fmt, None, "not UTF-8", offset=exc.start) from None
    except RecursionError:
        raise InvalidPayload(fmt, None, "JSON nesting too deep") from None
    except ValueError as exc:
        raise InvalidPayload(fmt, None, f"malformed JSON: {exc}") from None
    if type(document) is not dict:
        raise InvalidPayload(fmt, None, "an LwM2M JSON document is an object")
    return document


# -- CBOR items ----------------------------------------------------------------------------

class _Reader:
    """Walks CBOR items of a payload, giving each one's byte range (RFC 8949 encoding)."""

    __slots__ = ("data", "fmt", "pos")

    def __init__(self, fmt: int, data: bytes) -> None:
        self.fmt = fmt
        self.data = data
        self.pos = 0

    def fail(self, reason: str) -> InvalidPayload:
        return InvalidPayload(self.fmt, None, reason, offset=self.pos)

    def head(self) -> tuple[int, int, int | None]:
        """(major type, additional info, argument; None for indefinite length)."""
        data = self.data
        if self.pos >= len(data):
            raise self.fail("truncated CBOR item")
        first = data[self.pos]
        major, info = first >> 5, first & 0x1F
        self.pos += 1
        if info < 24:
            return major, info, info
        if info <= 27:
            size = 1 << (info - 24)
            if self.pos + size > len(data):
                raise self.fail("truncated CBOR item")
            value = int.from_bytes(data[self.pos:self.pos + size], "big")
            self.pos += size
            return major, info, value
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, None
        raise self.fail(f"reserved CBOR additional information {info}")

    def at_break(self) -> bool:
        if self.pos < len(self.data) and self.data[self.pos] == 0xFF:
            self.pos += 1
            return True
        return False

    def skip(self, depth: int = 0) -> None:
        """Move past one complete item."""
        if depth > _MAX_DEPTH:
            raise self.fail("CBOR nesting too deep")
        major, _info, arg = self.head()
        if major in (0, 1):
            return
        if major in (2, 3):
            if arg is None:
                while not self.at_break():
                    chunk_major, _, length = self.head()
                    if chunk_major != major or length is None:
                        raise self.fail("bad chunk in an indefinite-length string")
                    self._advance(length)
                return
            self._advance(arg)
            return
        if major in (4, 5):
            per_entry = 2 if major == 5 else 1
            if arg is None:
                while not self.at_break():
                    for _ in range(per_entry):
                        self.skip(depth + 1)
                return
            if arg > len(self.data):  # each entry takes a byte at least
                raise self.fail("CBOR length beyond the payload")
            for _ in range(arg * per_entry):
                self.skip(depth + 1)
            return
        if major == 6:
            self.skip(depth + 1)
            return
        if arg is None:
            raise self.fail("unexpected CBOR break")
        # major 7: simple values and floats, whose bytes head() consumed

    def _advance(self, length: int) -> None:
        if length > len(self.data) - self.pos:
            raise self.fail("CBOR string beyond the payload")
        self.pos += length

    def item(self) -> bytes:
        start = self.pos
        self.skip()
        return self.data[start:self.pos]

    def text(self) -> str:
        start = self.pos
        major, _info, arg = self.head()
        if major != 3 or arg is None:
            self.pos = start
            raise self.fail("a name must be a definite-length text string")
        raw = self.data[self.pos:self.pos + arg]
        self._advance(arg)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a name is not UTF-8") from None

    def int_key(self) -> int | None:
        """The key at the cursor if it is a small integer (consumed), else None (kept)."""
        first = self.data[self.pos] if self.pos < len(self.data) else -1
        if 0x00 <= first <= 0x17:
            self.pos += 1
            return first
        if 0x20 <= first <= 0x37:
            self.pos += 1
            return -1 - (first - 0x20)
        return None

    def count(self, major: int, what: str) -> int | None:
        got, _info, arg = self.head()
        if got != major:
            raise self.fail(f"expected {what}")
        return arg

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail("trailing bytes after the CBOR item")


def _entries(reader: _Reader, count: int | None) -> Iterable[int]:
    """Indexes of the entries of an array or map whose length is ``count`` (None:
    indefinite, ended by a break)."""
    index = 0
    while True:
        if count is None:
            if reader.at_break():
                return
        elif index >= count:
            return
        yield index
        index += 1


def _cbor_records(payload: bytes, carry_bases: bool
                  ) -> list[tuple[str, list[tuple[bytes, bytes]]]]:
    """(full name, the record's other (key, value) item pairs) per SenML CBOR record."""
    reader = _Reader(CF.SENML_CBOR, payload)
    records = reader.count(MAJOR_ARRAY >> 5, "a SenML pack (an array)")
    base = ""
    bases: dict[int, tuple[bytes, bytes]] = {}
    out: list[tuple[str, list[tuple[bytes, bytes]]]] = []
    for _ in _entries(reader, records):
        pairs_count = reader.count(MAJOR_MAP >> 5, "a SenML record (a map)")
        name = ""
        pairs: list[tuple[bytes, bytes]] = []
        own: set[int] = set()
        for _pair in _entries(reader, pairs_count):
            start = reader.pos
            key = reader.int_key()
            if key == _CBOR_BN:
                base = reader.text()
                continue
            if key == _CBOR_N:
                name = reader.text()
                continue
            if key is None:
                reader.skip()
            key_bytes = payload[start:reader.pos]
            value = reader.item()
            if key is not None and key in _CBOR_BASES:
                bases[key] = (key_bytes, value)
                own.add(key)
            pairs.append((key_bytes, value))
        if carry_bases:
            pairs = [bases[k] for k in _CBOR_BASES if k in bases and k not in own] + pairs
        out.append((base + name, pairs))
    reader.end()
    return out


def _cbor_dump(records: list[tuple[str, list[tuple[bytes, bytes]]]]) -> bytes:
    parts = [head(MAJOR_ARRAY, len(records))]
    for name, pairs in records:
        parts.append(head(MAJOR_MAP, len(pairs) + 1))
        parts.append(b"\x00" + text_item(name))
        for key, value in pairs:
            parts.append(key)
            parts.append(value)
    return b"".join(parts)


# -- LwM2M CBOR ----------------------------------------------------------------------------

def _wrap_lwm2m_cbor(payload: bytes, prefix: str) -> bytes:
    """``{prefix: <payload's map>}``: the Gateway TS's text-string path component."""
    reader = _Reader(CF.LWM2M_CBOR, payload)
    reader.count(MAJOR_MAP >> 5, "an LwM2M CBOR map")
    reader.pos = 0
    reader.skip()
    reader.end()
    return head(MAJOR_MAP, 1) + text_item(prefix) + payload


def _lwm2m_cbor_pairs(payload: bytes) -> list[bytes]:
    """The raw (key + value) byte strings of the top map of an LwM2M CBOR payload."""
    reader = _Reader(CF.LWM2M_CBOR, payload)
    count = reader.count(MAJOR_MAP >> 5, "an LwM2M CBOR map")
    out: list[bytes] = []
    for _ in _entries(reader, count):
        start = reader.pos
        reader.skip()
        reader.skip()
        out.append(payload[start:reader.pos])
    reader.end()
    return out


def _unwrap_lwm2m_cbor(payload: bytes, prefix: str) -> bytes:
    """The map without ``prefix``: ``{"dev1": {3: ...}}`` and ``{["dev1", 3, 0]: ...}``
    become ``{3: ...}`` and ``{[3, 0]: ...}``; keys without the prefix stay."""
    fmt = CF.LWM2M_CBOR
    reader = _Reader(fmt, payload)
    count = reader.count(MAJOR_MAP >> 5, "an LwM2M CBOR map")
    pairs: list[bytes] = []
    for _ in _entries(reader, count):
        start = reader.pos
        major = payload[start] >> 5 if start < len(payload) else -1
        if major == 3:
            key = reader.text()
            if key != prefix:
                raise InvalidPayload(fmt, None, f"path component {shown(key, 24)} is not "
                                     "this device's prefix", offset=start)
            inner_count = reader.count(MAJOR_MAP >> 5, "a map under the prefix")
            for _inner in _entries(reader, inner_count):
                entry = reader.pos
                reader.skip()
                reader.skip()
                pairs.append(payload[entry:reader.pos])
            continue
        if major == 4:
            pairs.append(_unprefixed_array_key(reader, prefix) + reader.item())
            continue
        reader.skip()
        reader.skip()
        pairs.append(payload[start:reader.pos])
    reader.end()
    return head(MAJOR_MAP, len(pairs)) + b"".join(pairs)


def _unprefixed_array_key(reader: _Reader, prefix: str) -> bytes:
    """An array key with ``prefix`` first, re-encoded without it."""
    start = reader.pos
    length = reader.count(MAJOR_ARRAY >> 5, "an array key")
    if length is None or length == 0:
        raise reader.fail("an array key has a definite length of at least one")
    first_major = reader.data[reader.pos] >> 5 if reader.pos < len(reader.data) else -1
    if first_major != 3:
        reader.pos = start
        return reader.item()
    component = reader.text()
    if component != prefix:
        raise reader.fail(f"path component {shown(component, 24)} is not this device's "
                          "prefix")
    rest = [reader.item() for _ in range(length - 1)]
    if not rest:
        raise reader.fail("a prefix alone is no path")
    return head(MAJOR_ARRAY, len(rest)) + b"".join(rest)
