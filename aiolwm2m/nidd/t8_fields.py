"""Checking and converting the simple values of T8 JSON bodies (3GPP TS 29.122 / 29.571).

Each parser takes the decoded JSON value and the JSON Pointer of where it was found, and
returns the Python form or raises :class:`T8FormatError` naming that pointer: the SCEF
answers such errors with 400 and an ``invalidParams`` entry, the SCS/AS side logs them.
Sans-IO, and bounded: strings longer than :data:`MAX_TEXT` are refused before they are
looked at, so a hostile body costs at most what its size already cost to parse.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiolwm2m.lwm2m.errors import shown

#: Longest identifier, link or enumeration text accepted (External Identifiers are
#: domain names plus a local part; URIs of callbacks stay far below this).
MAX_TEXT = 2048
#: Most items in one array of a body (rdsPorts, gmdResults, managedPorts...).
MAX_ITEMS = 10_000

Parser = Callable[[Any, str], Any]


class T8FormatError(ValueError):
    """A T8 body or value does not follow the schema; ``param`` is the JSON Pointer of the
    offending attribute (``/externalId``), ``reason`` says what is wrong with it."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param or '/'}: {reason}")
        self.param = param or "/"
        self.reason = reason


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise T8FormatError(where, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise T8FormatError(where, f"longer than {MAX_TEXT} characters")
    return value


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise T8FormatError(where, f"expected true or false, got {shown(value, 20)}")
    return value


def integer(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(value: Any, where: str) -> int:
        # JSON has one number type: 3.0 is an integer value, true is not.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise T8FormatError(where, f"expected an integer, got {shown(value, 20)}")
        if isinstance(value, float) and not value.is_integer():
            raise T8FormatError(where, f"expected an integer, got {shown(value, 20)}")
        number = int(value)
        if minimum is not None and number < minimum:
            raise T8FormatError(where, f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise T8FormatError(where, f"must be at most {maximum}")
        return number
    return parse


#: Durations (``DurationSec``) up to ten years; priorities and packet sizes below 2**31.
duration_sec = integer(0, 10 * 366 * 86400)
port = integer(0, 65535)
any_int = integer(-(2 ** 31), 2 ** 31 - 1)
positive_int = integer(1, 2 ** 31 - 1)

_IDENTIFIER_PART = re.compile(r"[^@\s]+")


def external_id(value: Any, where: str) -> str:
    """``local@domain``, neither part containing ``@`` (TS 23.682 clause 4.6.2)."""
    s = text(value, where)
    local, at, domain = s.partition("@")
    if not at or not _IDENTIFIER_PART.fullmatch(local) or not _IDENTIFIER_PART.fullmatch(
            domain):
        raise T8FormatError(where, "expected local-identifier@domain-identifier")
    return s


_MSISDN = re.compile(r"[0-9]{5,15}")


def msisdn(value: Any, where: str) -> str:
    """Digits only, as TS 23.003 clause 3.3 writes an MSISDN (country code first)."""
    s = text(value, where)
    if not _MSISDN.fullmatch(s):
        raise T8FormatError(where, "expected an MSISDN of 5 to 15 digits")
    return s


def link(value: Any, where: str) -> str:
    s = text(value, where)
    if not s or any(c.isspace() for c in s):
        raise T8FormatError(where, "expected a URI")
    return s


def data_bytes(value: Any, where: str) -> bytes:
    """``Bytes``: base64 text (standard alphabet, padding required). Its length is bounded
    by the body it came in, not by MAX_TEXT: the callers cap bodies."""
    if not isinstance(value, str):
        raise T8FormatError(where, f"expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise T8FormatError(where, "not base64 data") from None


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def date_time(value: Any, where: str) -> float:
    """``DateTime`` (RFC 3339 ``date-time``) as seconds since the epoch."""
    s = text(value, where)
    if not _DATE_TIME.fullmatch(s):
        raise T8FormatError(where, "expected an RFC 3339 date-time")
    try:
        parsed = datetime.fromisoformat(s.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise T8FormatError(where, "not a valid date-time") from None
    return parsed.timestamp()


def format_date_time(epoch: float) -> str:
    """Seconds since the epoch as an RFC 3339 date-time in UTC, whole seconds."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_HEX = re.compile(r"[A-Fa-f0-9]*")


def supported_features(value: Any, where: str) -> str:
    s = text(value, where)
    if not _HEX.fullmatch(s):
        raise T8FormatError(where, "expected hexadecimal feature bits")
    return s


_PORT_ID = re.compile(r"ue([0-9]|1[0-5])-ef([0-9]|1[0-5])")


def port_id(value: Any, where: str) -> tuple[int, int]:
    """The ``portId`` of ``rds-ports/{portId}``: ``ue<0..15>-ef<0..15>``."""
    s = text(value, where)
    m = _PORT_ID.fullmatch(s)
    if m is None:
        raise T8FormatError(where, "expected ue<0-15>-ef<0-15>")
    return int(m.group(1)), int(m.group(2))


def format_port_id(port_ue: int, port_scef: int) -> str:
    return f"ue{port_ue}-ef{port_scef}"


def has_feature(features: str | None, number: int) -> bool:
    """Whether the SupportedFeatures hex string sets feature ``number`` (1-based, TS 29.500
    clause 6.6.2: the last character holds features 1 to 4)."""
    if not features or number < 1:
        return False
    index = (number - 1) // 4
    if index >= len(features):
        return False
    digit = int(features[len(features) - 1 - index], 16)
    return bool(digit & (1 << ((number - 1) % 4)))


def feature_bits(*numbers: int) -> str:
    """The SupportedFeatures string setting exactly ``numbers``."""
    mask = 0
    for n in numbers:
        mask |= 1 << (n - 1)
    width = max(1, -(-max(numbers, default=1) // 4))
    return f"{mask:0{width}x}"


def common_features(ours: str, theirs: str | None) -> str:
    """The features both strings set (what a server answers with)."""
    if not theirs:
        return ""
    width = max(len(ours), len(theirs))
    return f"{int(ours or '0', 16) & int(theirs, 16):0{width}x}"
