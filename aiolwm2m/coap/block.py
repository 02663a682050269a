"""The value of a Block1/Block2 option (RFC 7959 section 2.2), with BERT (RFC 8323 SZX 7)."""

from __future__ import annotations

from typing import NamedTuple

BERT_SZX = 7


class BlockValue(NamedTuple):
    num: int
    more: bool
    szx: int

    @property
    def size(self) -> int:
        """Block size in bytes; BERT blocks are multiples of 1024 and report 1024 here."""
        return 1 << (min(self.szx, 6) + 4)

    @property
    def offset(self) -> int:
        return self.num * self.size

    def encode(self) -> int:
        return (self.num << 4) | (8 if self.more else 0) | self.szx

    @classmethod
    def decode(cls, value: int) -> BlockValue:
        return cls(value >> 4, bool(value & 8), value & 7)

    @classmethod
    def for_size(cls, num: int, more: bool, size: int) -> BlockValue:
        return cls(num, more, size_to_szx(size))


def size_to_szx(size: int) -> int:
    """16 -> 0 ... 1024 -> 6; other sizes are rounded down to a power of two in range."""
    size = max(16, min(size, 1024))
    return size.bit_length() - 5


MAX_BLOCK_NUM = (1 << 20) - 1
