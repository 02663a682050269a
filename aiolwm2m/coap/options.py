"""The CoAP option registry: numbers, value formats and the class bits of each number.

Covers RFC 7252, RFC 7641 (Observe), RFC 7959 (Block1/Block2/Size2), RFC 7967 (No-Response)
and RFC 9175 (Echo, Request-Tag). RFC 8132 adds methods but no options.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class OptionNumber(IntEnum):
    IF_MATCH = 1
    URI_HOST = 3
    ETAG = 4
    IF_NONE_MATCH = 5
    OBSERVE = 6
    URI_PORT = 7
    LOCATION_PATH = 8
    URI_PATH = 11
    CONTENT_FORMAT = 12
    MAX_AGE = 14
    URI_QUERY = 15
    ACCEPT = 17
    LOCATION_QUERY = 20
    BLOCK2 = 23
    BLOCK1 = 27
    SIZE2 = 28
    PROXY_URI = 35
    PROXY_SCHEME = 39
    SIZE1 = 60
    ECHO = 252
    NO_RESPONSE = 258
    REQUEST_TAG = 292


class OptionFormat(Enum):
    EMPTY = "empty"
    OPAQUE = "opaque"
    UINT = "uint"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class OptionDef:
    number: int
    name: str
    format: OptionFormat
    repeatable: bool
    min_length: int
    max_length: int

    @property
    def critical(self) -> bool:
        return is_critical(self.number)

    @property
    def unsafe(self) -> bool:
        return is_unsafe(self.number)

    @property
    def no_cache_key(self) -> bool:
        return is_no_cache_key(self.number)


def is_critical(number: int) -> bool:
    """Odd option numbers are critical (RFC 7252 section 5.4.6)."""
    return bool(number & 1)


def is_unsafe(number: int) -> bool:
    return bool(number & 2)


def is_no_cache_key(number: int) -> bool:
    return (number & 0x1E) == 0x1C


_E, _O, _U, _S = OptionFormat.EMPTY, OptionFormat.OPAQUE, OptionFormat.UINT, OptionFormat.STRING

REGISTRY: dict[int, OptionDef] = {
    d.number: d
    for d in (
        OptionDef(1, "If-Match", _O, True, 0, 8),
        OptionDef(3, "Uri-Host", _S, False, 1, 255),
        OptionDef(4, "ETag", _O, True, 1, 8),
        OptionDef(5, "If-None-Match", _E, False, 0, 0),
        OptionDef(6, "Observe", _U, False, 0, 3),
        OptionDef(7, "Uri-Port", _U, False, 0, 2),
        OptionDef(8, "Location-Path", _S, True, 0, 255),
        OptionDef(11, "Uri-Path", _S, True, 0, 255),
        OptionDef(12, "Content-Format", _U, False, 0, 2),
        OptionDef(14, "Max-Age", _U, False, 0, 4),
        OptionDef(15, "Uri-Query", _S, True, 0, 255),
        OptionDef(17, "Accept", _U, False, 0, 2),
        OptionDef(20, "Location-Query", _S, True, 0, 255),
        OptionDef(23, "Block2", _U, False, 0, 3),
        OptionDef(27, "Block1", _U, False, 0, 3),
        OptionDef(28, "Size2", _U, False, 0, 4),
        OptionDef(35, "Proxy-Uri", _S, False, 1, 1034),
        OptionDef(39, "Proxy-Scheme", _S, False, 1, 255),
        OptionDef(60, "Size1", _U, False, 0, 4),
        OptionDef(252, "Echo", _O, False, 1, 40),
        OptionDef(258, "No-Response", _U, False, 0, 1),
        OptionDef(292, "Request-Tag", _O, True, 0, 8),
    )
}

# Option numbers RFC 7252 section 12.2 keeps reserved; none of them is critical, so a receiver
# ignores them like any other unrecognised elective option.
RESERVED_NUMBERS = frozenset({0, 128, 132, 136, 140})

_BY_NAME = {d.name.lower(): d for d in REGISTRY.values()}

# Pre-encoded small unsigned integers: most option values (content formats, ports, block
# numbers of short transfers) fall in this range and would otherwise allocate on every encode.
_SMALL_UINTS: tuple[bytes, ...] = (b"", *(bytes((i,)) for i in range(1, 256)))


def encode_uint(value: int) -> bytes:
    """Shortest big-endian form; zero is the empty string (RFC 7252 section 3.2)."""
    if 0 <= value < 256:
        return _SMALL_UINTS[value]
    if value < 0:
        raise ValueError(f"option value must be non-negative, got {value}")
    return value.to_bytes((value.bit_length() + 7) >> 3, "big")


def decode_uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def option_def(number_or_name: int | str) -> OptionDef | None:
    if isinstance(number_or_name, str):
        return _BY_NAME.get(number_or_name.lower())
    return REGISTRY.get(number_or_name)


def option_name(number: int) -> str:
    d = REGISTRY.get(number)
    return d.name if d else f"Option{number}"


def encode_value(number: int, value: int | str | bytes | None) -> bytes:
    """Encode a typed value for ``number`` according to the registry's format."""
    d = REGISTRY.get(number)
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        if d is not None and d.format is not OptionFormat.UINT:
            raise TypeError(f"{d.name} takes {d.format.value}, not an integer")
        return encode_uint(value)
    if d is not None and d.format is not OptionFormat.STRING:
        raise TypeError(f"{d.name} takes {d.format.value}, not a string")
    return value.encode("utf-8")


def decode_value(number: int, raw: bytes) -> int | str | bytes | None:
    """Typed value of a raw option; unknown options stay opaque."""
    d = REGISTRY.get(number)
    if d is None or d.format is OptionFormat.OPAQUE:
        return raw
    if d.format is OptionFormat.UINT:
        return decode_uint(raw)
    if d.format is OptionFormat.STRING:
        return raw.decode("utf-8", errors="replace")
    return None


def check_option(number: int, raw: bytes) -> str | None:
    """Why an occurrence of a known option is malformed, or None when it is acceptable.

    Per RFC 7252 section 5.4.3 a length outside the defined range is treated like an
    unrecognised option, which matters only for critical options.
    """
    d = REGISTRY.get(number)
    if d is None:
        return None
    n = len(raw)
    if n < d.min_length or n > d.max_length:
        return f"{d.name} length {n} outside {d.min_length}..{d.max_length}"
    return None
