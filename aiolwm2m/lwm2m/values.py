"""Resource types and their Python values.

Python representation per :class:`ResourceType`:

============================  ================================================================
STRING                        ``str``
INTEGER                       ``int`` in the signed 64-bit range
UNSIGNED_INTEGER              ``int`` in 0 .. 2**64-1
FLOAT                         ``float`` (ints are accepted and converted)
BOOLEAN                       ``bool``
OPAQUE                        ``bytes`` (bytearray / memoryview are accepted and copied)
TIME                          ``datetime.datetime``, timezone-aware, in UTC, whole seconds
OBJLNK                        :class:`ObjectLink`
CORELNK                       ``str`` holding a CoRE link-format document
NONE                          no value: executable resources are never read or written
============================  ================================================================

TIME is a ``datetime`` because that is what users of the server and REST API want to see;
:func:`coerce_value` also accepts an ``int`` (or ``float``, rounded down) count of seconds
since the Unix epoch, and naive datetimes are rejected rather than guessed. The wire value is
always whole seconds; a time outside what ``datetime`` can hold (years 1..9999) is rejected
with :class:`~aiolwm2m.lwm2m.errors.InvalidValue`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from .errors import InvalidValue, shown

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "ObjectLink",
    "ResourceType",
    "Value",
    "coerce_value",
    "from_text",
    "seconds_to_time",
    "time_to_seconds",
    "to_text",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
_MAX_LINK_ID: Final = 65535

UTC: Final = _dt.UTC
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=UTC)
_MIN_TIME_SECONDS: Final = int((_dt.datetime(1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
_MAX_TIME_SECONDS: Final = int(
    (_dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()
)


class ResourceType(enum.Enum):
    """The LwM2M data types; values are the spellings used in DDF files."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"

    # Enum.__hash__ hashes the member name in Python code, which made every codec table keyed
    # by type cost a Python call per lookup. Members are singletons compared by identity, so the
    # identity hash is equivalent and runs in C.
    __hash__ = object.__hash__

    @classmethod
    def from_ddf_name(cls, name: str) -> ResourceType:
        """Map a DDF ``<Type>`` text (case-insensitive; empty means executable)."""
        key = " ".join(name.split()).lower()
        found = _DDF_NAMES.get(key)
        if found is None:
            raise ValueError(f"unknown resource type {name!r}")
        return found

    @property
    def is_numeric(self) -> bool:
        return self in _NUMERIC


_DDF_NAMES: Final = {t.value.lower(): t for t in ResourceType} | {"": ResourceType.NONE}
_NUMERIC: Final = frozenset(
    {ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT, ResourceType.TIME}
)


@dataclass(frozen=True, slots=True, order=True)
class ObjectLink:
    """A reference to an object instance (``Objlnk``); text form ``"3:0"``."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        oid, iid = self.object_id, self.instance_id
        if (
            type(oid) is int
            and type(iid) is int
            and 0 <= oid <= _MAX_LINK_ID
            and 0 <= iid <= _MAX_LINK_ID
        ):
            return
        for name, value in (("object_id", oid), ("instance_id", iid)):
            if type(value) is not int or not 0 <= value <= _MAX_LINK_ID:
                raise InvalidValue(
                    None, None, f"object link {name} {shown(value, 24)} not in 0..65535"
                )

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        """Parse ``"oid:iid"``; raises :class:`InvalidValue`."""
        left, sep, right = text.partition(":")
        if not sep or not _is_decimal(left) or not _is_decimal(right):
            raise InvalidValue(None, None, f"object link {shown(text, 24)} is not 'oid:iid'")
        return cls(int(left), int(right))

    @property
    def is_null(self) -> bool:
        """The TS uses 65535:65535 for "links to nothing"."""
        return self.object_id == _MAX_LINK_ID and self.instance_id == _MAX_LINK_ID

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


Value: TypeAlias = str | int | float | bool | bytes | _dt.datetime | ObjectLink

# Constructing the frozen dataclass runs __init__, __setattr__ and __post_init__ in Python;
# decoders see the same few links repeatedly, and links are immutable, so they share them.
_LINKS_BY_TEXT: Final[dict[str, ObjectLink]] = {}
_LINKS_BY_IDS: Final[dict[int, ObjectLink]] = {}
_LINK_CACHE_SIZE: Final = 1024


def link_from_text(text: str) -> ObjectLink:
    """:meth:`ObjectLink.parse`, sharing the links of recently seen texts."""
    found = _LINKS_BY_TEXT.get(text)
    if found is None:
        found = ObjectLink.parse(text)
        if len(_LINKS_BY_TEXT) >= _LINK_CACHE_SIZE:
            _LINKS_BY_TEXT.clear()
        _LINKS_BY_TEXT[text] = found
    return found


def link_from_ids(object_id: int, instance_id: int) -> ObjectLink:
    """``ObjectLink(object_id, instance_id)`` for ids already known to be ints in 0..65535."""
    key = object_id << 16 | instance_id
    found = _LINKS_BY_IDS.get(key)
    if found is None:
        found = ObjectLink(object_id, instance_id)
        if len(_LINKS_BY_IDS) >= _LINK_CACHE_SIZE:
            _LINKS_BY_IDS.clear()
        _LINKS_BY_IDS[key] = found
    return found


def _is_decimal(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


# --- time helpers ------------------------------------------------------------------------------
# Building a datetime costs far more than decoding the integer it comes from, and devices report
# the same few times over and over (current time, manufacturing date, last update), so decoders
# share the (immutable) datetime of recently seen values, and encoders remember their seconds.
_TIME_CACHE: Final[dict[int, _dt.datetime]] = {}
_TIME_CACHE_SIZE: Final = 1024


def seconds_to_time(seconds: int) -> _dt.datetime:
    """Seconds since the epoch to an aware UTC datetime; raises :class:`InvalidValue`."""
    found = _TIME_CACHE.get(seconds)
    if found is not None:
        return found
    if not _MIN_TIME_SECONDS <= seconds <= _MAX_TIME_SECONDS:
        raise InvalidValue(None, None, f"time {shown(seconds, 24)} s is outside years 1..9999")
    value = _EPOCH + _dt.timedelta(seconds=seconds)
    if len(_TIME_CACHE) >= _TIME_CACHE_SIZE:
        _TIME_CACHE.clear()
    _TIME_CACHE[seconds] = value
    return value


_SECONDS_CACHE: Final[dict[_dt.datetime, int]] = {}


def time_to_seconds(value: _dt.datetime) -> int:
    """An aware datetime to whole seconds since the epoch (rounded down)."""
    exact = type(value) is _dt.datetime
    if exact:
        found = _SECONDS_CACHE.get(value)
        if found is not None:
            return found
    seconds = math.floor((value - _EPOCH).total_seconds())
    if exact:
        if len(_SECONDS_CACHE) >= _TIME_CACHE_SIZE:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[value] = seconds
    return seconds


# --- coercion ----------------------------------------------------------------------------------
def _reject(rtype: ResourceType, value: object, why: str = "") -> InvalidValue:
    detail = f": {why}" if why else ""
    return InvalidValue(None, None, f"{shown(value)} is not a valid {rtype.value} value{detail}")


def _coerce_string(value: object) -> str:
    if type(value) is str:
        return value
    raise _reject(ResourceType.STRING, value, "expected str")


def _coerce_integer(value: object) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise _reject(ResourceType.INTEGER, value, "expected int")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _reject(ResourceType.INTEGER, value, "outside the signed 64-bit range")
    return value


def _coerce_unsigned(value: object) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise _reject(ResourceType.UNSIGNED_INTEGER, value, "expected int")
    if not 0 <= value <= UINT64_MAX:
        raise _reject(ResourceType.UNSIGNED_INTEGER, value, "outside 0..2**64-1")
    return value


def _coerce_float(value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _reject(ResourceType.FLOAT, value, "too large for a double") from None
    raise _reject(ResourceType.FLOAT, value, "expected float")


def _coerce_boolean(value: object) -> bool:
    if type(value) is bool:
        return value
    raise _reject(ResourceType.BOOLEAN, value, "expected bool")


def _coerce_opaque(value: object) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise _reject(ResourceType.OPAQUE, value, "expected bytes")


def _coerce_time(value: object) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _reject(ResourceType.TIME, value, "naive datetimes are ambiguous")
        seconds = time_to_seconds(value)
    elif type(value) is int:
        seconds = value
    elif type(value) is float and math.isfinite(value):
        seconds = math.floor(value)
    else:
        raise _reject(ResourceType.TIME, value, "expected an aware datetime or epoch seconds")
    try:
        return seconds_to_time(seconds)
    except InvalidValue:
        raise _reject(ResourceType.TIME, value, "outside years 1..9999") from None


def _coerce_objlnk(value: object) -> ObjectLink:
    if type(value) is ObjectLink:
        return value
    if isinstance(value, tuple) and len(value) == 2:
        try:
            return ObjectLink(value[0], value[1])
        except InvalidValue as exc:
            raise _reject(ResourceType.OBJLNK, value, exc.reason) from None
    raise _reject(ResourceType.OBJLNK, value, "expected ObjectLink or (object_id, instance_id)")


def _coerce_corelnk(value: object) -> str:
    if type(value) is str:
        return value
    raise _reject(ResourceType.CORELNK, value, "expected a link-format str")


def _coerce_none(value: object) -> object:
    raise _reject(ResourceType.NONE, value, "executable resources have no value")


COERCERS: Final[dict[ResourceType, Callable[[object], object]]] = {
    ResourceType.STRING: _coerce_string,
    ResourceType.INTEGER: _coerce_integer,
    ResourceType.UNSIGNED_INTEGER: _coerce_unsigned,
    ResourceType.FLOAT: _coerce_float,
    ResourceType.BOOLEAN: _coerce_boolean,
    ResourceType.OPAQUE: _coerce_opaque,
    ResourceType.TIME: _coerce_time,
    ResourceType.OBJLNK: _coerce_objlnk,
    ResourceType.CORELNK: _coerce_corelnk,
    ResourceType.NONE: _coerce_none,
}


def coerce_value(rtype: ResourceType, value: object) -> Value:
    """Check ``value`` against ``rtype`` and return its canonical Python form.

    Raises :class:`InvalidValue` naming the value, the type and the reason.
    """
    return COERCERS[rtype](value)  # type: ignore[return-value]


# --- text form (text/plain, REST API) ---------------------------------------------------------
def to_text(rtype: ResourceType, value: Value) -> str:
    """The text/plain form of a value (already coerced to ``rtype``)."""
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        return _coerce_string(value)
    if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
        return str(COERCERS[rtype](value))
    if rtype is ResourceType.FLOAT:
        return repr(_coerce_float(value))
    if rtype is ResourceType.BOOLEAN:
        return "1" if _coerce_boolean(value) else "0"
    if rtype is ResourceType.OPAQUE:
        return base64.b64encode(_coerce_opaque(value)).decode("ascii")
    if rtype is ResourceType.TIME:
        return str(time_to_seconds(_coerce_time(value)))
    if rtype is ResourceType.OBJLNK:
        return str(_coerce_objlnk(value))
    raise _reject(rtype, value)


_TRUE_WORDS: Final = frozenset({"1", "true"})
_FALSE_WORDS: Final = frozenset({"0", "false"})


def from_text(rtype: ResourceType, text: str) -> Value:
    """Parse the text/plain form of a value; raises :class:`InvalidValue`.

    Integers and times are decimal (a time may also be ISO 8601 with an offset), floats use
    Python's float syntax without surrounding blanks, booleans are ``0``/``1`` (``true`` and
    ``false`` are accepted too), opaque is standard base64, object links are ``oid:iid``.
    """
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        return text
    if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
        return COERCERS[rtype](_parse_decimal(rtype, text))  # type: ignore[return-value]
    if rtype is ResourceType.FLOAT:
        if text != text.strip() or not text or "_" in text:
            raise _reject(rtype, text, "not a number")
        try:
            return float(text)
        except ValueError:
            raise _reject(rtype, text, "not a number") from None
    if rtype is ResourceType.BOOLEAN:
        lowered = text.lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise _reject(rtype, text, "expected 0 or 1")
    if rtype is ResourceType.OPAQUE:
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise _reject(rtype, text, "not base64") from None
    if rtype is ResourceType.TIME:
        if text[:1] in "-+0123456789" and text.lstrip("+-").isdigit():
            return _coerce_time(_parse_decimal(rtype, text))
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise _reject(rtype, text, "expected epoch seconds or ISO 8601") from None
        return _coerce_time(parsed)
    if rtype is ResourceType.OBJLNK:
        try:
            return ObjectLink.parse(text)
        except InvalidValue as exc:
            raise _reject(rtype, text, exc.reason) from None
    raise _reject(rtype, text)


def _parse_decimal(rtype: ResourceType, text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit() or len(body) > 20:
        raise _reject(rtype, text, "not a decimal integer")
    return int(text)
