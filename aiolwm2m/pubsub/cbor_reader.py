"""A strict reader for the small CBOR documents of topic configuration.

Topic properties are a flat map of small integer keys to text, byte strings, unsigned
integers and one tagged number, plus arrays of keys for filters. A general decoder accepts
much more (bignums, sets, date strings for tag 1, nesting hundreds deep) and decodes tag 1
to a datetime, losing the number the draft puts there. This one reads exactly the items a
topic configuration may hold, rejects everything else with the byte offset, and never
allocates more than the input's size: it is what parses bytes from unauthenticated peers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

#: A configuration map holds arrays (filters) and tags (dates): two levels below the map.
MAX_DEPTH: Final = 3


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: int
    value: object


class CborError(ValueError):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at byte {offset}")
        self.reason = reason
        self.offset = offset


_HALF: Final = struct.Struct(">e")
_SINGLE: Final = struct.Struct(">f")
_DOUBLE: Final = struct.Struct(">d")


def read_item(data: bytes) -> object:
    """Decode exactly one item; trailing bytes are an error."""
    reader = _Reader(data)
    item = reader.item(0)
    if reader.pos != len(data):
        raise CborError(f"{len(data) - reader.pos} bytes after the CBOR item", reader.pos)
    return item


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CborError("truncated CBOR item", self.pos)
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _head(self) -> tuple[int, int, int]:
        start = self.pos
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, start
        if info > 27:
            what = "indefinite-length items" if info == 31 else "reserved additional info"
            raise CborError(f"{what} are not accepted", start)
        if major == 7:
            return major, info, start  # floats: the caller reads the bytes
        size = 1 << (info - 24)
        return major, int.from_bytes(self._take(size), "big"), start

    def item(self, depth: int) -> object:
        major, arg, start = self._head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            # A length beyond what is left fails here, before any allocation.
            if arg > len(self.data) - self.pos:
                raise CborError("string longer than the payload", start)
            raw = self._take(arg)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise CborError("text string is not UTF-8", start) from None
        if major in (4, 5):
            if depth >= MAX_DEPTH:
                raise CborError("nested too deep", start)
            # Each element takes at least one byte: a count beyond what is left is a lie.
            if arg > len(self.data) - self.pos:
                raise CborError("more elements than bytes left", start)
            if major == 4:
                return [self.item(depth + 1) for _ in range(arg)]
            out: dict[object, object] = {}
            for _ in range(arg):
                key_at = self.pos
                key = self.item(depth + 1)
                if isinstance(key, list | dict | bytes | Tagged | float):
                    raise CborError("map keys must be integers or text", key_at)
                if key in out:
                    raise CborError(f"duplicate map key {key!r}"[:60], key_at)
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            if depth >= MAX_DEPTH:
                raise CborError("nested too deep", start)
            return Tagged(arg, self.item(depth + 1))
        return self._simple(arg, start)

    def _simple(self, info: int, start: int) -> object:
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == 25:
            return float(_HALF.unpack(self._take(2))[0])
        if info == 26:
            return float(_SINGLE.unpack(self._take(4))[0])
        if info == 27:
            return float(_DOUBLE.unpack(self._take(8))[0])
        raise CborError(f"simple value {info} is not accepted", start)
