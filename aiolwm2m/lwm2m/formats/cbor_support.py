"""CBOR helpers shared by the CBOR-based formats (CBOR, SenML CBOR, LwM2M CBOR).

* :func:`load_one` decodes exactly one data item (``cbor2.loads`` would silently ignore
  trailing bytes) and wraps every decoder failure in :class:`InvalidPayload`.
* :func:`dump` encodes with the shortest float that keeps the value (float16, float32 or
  float64): ``cbor2`` only does that in canonical mode, which also sorts every map and is
  several times slower. Floats to shorten are wrapped in :class:`ShortFloat`.
* :func:`kind_of` tells the value kind of a decoded item.
"""

from __future__ import annotations

import datetime as _dt
import io
import struct
from typing import Any, Final

import cbor2

from ..errors import InvalidPayload
from ..values import ObjectLink, time_to_seconds
from . import plans
from .value_mapping import Kind

__all__ = [
    "FALSE",
    "MAJOR_ARRAY",
    "MAJOR_BYTES",
    "MAJOR_MAP",
    "MAJOR_NEGATIVE",
    "MAJOR_TEXT",
    "MAJOR_UNSIGNED",
    "SMALL_UINTS",
    "TEXT_HEADS",
    "TRUE",
    "ShortFloat",
    "dump",
    "head",
    "int_item",
    "kind_of",
    "load_one",
    "shortest_float_bytes",
    "text_item",
    "utc_seconds",
    "value_item",
]

_HALF: Final = struct.Struct(">e")
_SINGLE: Final = struct.Struct(">f")
_DOUBLE: Final = struct.Struct(">d")
_START: Final = b"\x9f"  # an array of indefinite length
_BREAK: Final = b"\xff"  # "break", the end of an indefinite-length item
_loads: Final = cbor2.loads
_UTC: Final = _dt.UTC


def shortest_float_bytes(value: float) -> bytes:
    """The CBOR encoding (major type 7) of ``value`` in the fewest bytes that keep it exact."""
    try:
        half = _HALF.pack(value)
        if _HALF.unpack(half)[0] == value or value != value:
            return b"\xf9" + half
    except (OverflowError, struct.error):
        pass
    try:
        single = _SINGLE.pack(value)
        if _SINGLE.unpack(single)[0] == value:
            return b"\xfa" + single
    except (OverflowError, struct.error):
        pass
    return b"\xfb" + _DOUBLE.pack(value)


# --- writing items directly ---------------------------------------------------------------------
# SenML CBOR writes the records of an instance itself: building a two-entry dict per value for
# cbor2 costs about as much as cbor2 then takes to encode it.
_HEAD8: Final = struct.Struct(">BB").pack
_HEAD16: Final = struct.Struct(">BH").pack
_HEAD32: Final = struct.Struct(">BI").pack
_HEAD64: Final = struct.Struct(">BQ").pack
MAJOR_UNSIGNED: Final = 0x00
MAJOR_NEGATIVE: Final = 0x20
MAJOR_BYTES: Final = 0x40
MAJOR_TEXT: Final = 0x60
MAJOR_ARRAY: Final = 0x80
MAJOR_MAP: Final = 0xA0
TRUE: Final = b"\xf5"
FALSE: Final = b"\xf4"


def head(major: int, argument: int) -> bytes:
    """The initial bytes of an item of ``major`` type (0x00, 0x20 ... 0xa0) and ``argument``.

    Raises ``struct.error`` when the argument does not fit 64 bits.
    """
    if argument < 24:
        return bytes((major | argument,))
    if argument <= 0xFF:
        return _HEAD8(major | 24, argument)
    if argument <= 0xFFFF:
        return _HEAD16(major | 25, argument)
    if argument <= 0xFFFFFFFF:
        return _HEAD32(major | 26, argument)
    return _HEAD64(major | 27, argument)


SMALL_UINTS: Final = tuple(head(MAJOR_UNSIGNED, n) for n in range(256))
TEXT_HEADS: Final = tuple(head(MAJOR_TEXT, n) for n in range(256))


def int_item(value: int) -> bytes | None:
    """The item of an integer, or None beyond 64 bits (which cbor2 writes as a bignum)."""
    if 0 <= value <= 0xFF:
        return SMALL_UINTS[value]
    try:
        if value >= 0:
            return head(MAJOR_UNSIGNED, value)
        return head(MAJOR_NEGATIVE, -1 - value)
    except struct.error:
        return None


def text_item(value: str) -> bytes:
    """The item of a string; raises UnicodeEncodeError for lone surrogates."""
    data = value.encode("utf-8")
    length = len(data)
    return (TEXT_HEADS[length] if length <= 0xFF else head(MAJOR_TEXT, length)) + data


def utc_seconds(value: object) -> int | None:
    """Whole seconds since the epoch of a UTC datetime (what TIME values are), else None."""
    if type(value) is _dt.datetime and value.tzinfo is _UTC:
        return time_to_seconds(value)
    return None


def value_item(code: int, value: object) -> bytes | None:
    """The item of a value of type ``code`` (see :mod:`.plans`), None unless plainly valid.

    Floats take their shortest exact width, times are integer seconds, object links text.
    """
    value_type = type(value)
    if code == plans.STRING:
        return text_item(value) if value_type is str else None  # type: ignore[arg-type]
    if code == plans.INTEGER or code == plans.UNSIGNED:
        return int_item(value) if value_type is int else None  # type: ignore[arg-type]
    if code == plans.TIME:
        seconds = utc_seconds(value)
        return None if seconds is None else int_item(seconds)
    if code == plans.FLOAT:
        return shortest_float_bytes(value) if value_type is float else None  # type: ignore[arg-type]
    if code == plans.BOOLEAN:
        if value_type is bool:
            return TRUE if value else FALSE
        return None
    if code == plans.OPAQUE:
        if value_type is bytes:
            return head(MAJOR_BYTES, len(value)) + value  # type: ignore[arg-type,operator]
        return None
    if code == plans.OBJLNK and value_type is ObjectLink:
        return text_item(str(value))
    return None


class ShortFloat:
    """Marks a float to be written in its shortest exact CBOR form."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


def _encode_extra(encoder: Any, value: object) -> None:
    if type(value) is ShortFloat:
        encoder.write(shortest_float_bytes(value.value))
        return
    raise cbor2.CBOREncodeTypeError(f"cannot encode {type(value).__name__}")


def dump(obj: object) -> bytes:
    return cbor2.dumps(obj, default=_encode_extra)


def load_one(fmt: int, payload: bytes) -> Any:
    """Decode exactly one CBOR data item; raises :class:`InvalidPayload` otherwise."""
    # cbor2.loads ignores trailing bytes, and a CBORDecoder on a stream (which can tell where
    # the item ended) costs about a third of a small payload's whole decoding. Wrapped in an
    # indefinite-length array, one item decodes to a one-element list, while trailing bytes
    # decode as further elements or fail, except trailing bytes that begin with a "break"
    # (0xff), which would end the array early: payloads holding 0xff anywhere, and everything
    # that does not decode cleanly, take the exact path below, which reports the error.
    if payload and 0xFF not in payload:
        try:
            items = _loads(_START + payload + _BREAK)
        except Exception:  # the exact path below names the problem
            pass
        else:
            if len(items) == 1:
                return items[0]
    if not payload:
        raise InvalidPayload(fmt, None, "empty payload", offset=0)
    stream = io.BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except RecursionError:
        raise InvalidPayload(fmt, None, "CBOR nesting too deep") from None
    except Exception as exc:  # cbor2 raises several types for broken input; all mean the same
        raise InvalidPayload(fmt, None, f"malformed CBOR: {exc}", offset=stream.tell()) from None
    end = stream.tell()
    if end != len(payload):
        raise InvalidPayload(
            fmt, None, f"{len(payload) - end} bytes after the CBOR item", offset=end
        )
    return item


def kind_of(raw: object) -> int | None:
    """The value kind of a decoded CBOR item, or None for items no LwM2M value can be."""
    raw_type = type(raw)
    if raw_type is str:
        return Kind.STRING
    if raw_type is int or raw_type is float:
        return Kind.NUMBER
    if raw_type is bool:
        return Kind.BOOLEAN
    if raw_type is bytes:
        return Kind.OPAQUE
    if raw_type is _dt.datetime:
        return Kind.TIME
    return None
