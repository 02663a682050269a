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
from .value_mapping import Kind

__all__ = ["ShortFloat", "dump", "kind_of", "load_one", "shortest_float_bytes"]

_HALF: Final = struct.Struct(">e")
_SINGLE: Final = struct.Struct(">f")
_DOUBLE: Final = struct.Struct(">d")


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
