"""From wire values to typed values: what each format's value kinds may become.

The self-describing formats (SenML, LwM2M JSON, LwM2M CBOR, CBOR) tell a value's *kind* (a
number, a string, a boolean...) but not its LwM2M type. :class:`ValueMapper` resolves the type
from the model when the model knows the resource, checks that the kind fits that type and
converts; without a definition it derives the type from the kind alone. It also keeps the
model lookups of one payload in a small cache, since every record asks for them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import InvalidValue, shown
from ..model.registry import ModelRegistry
from ..path import LwM2MPath
from ..values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    ObjectLink,
    ResourceType,
    Value,
    seconds_to_time,
)

__all__ = ["Kind", "ResourceInfo", "ValueMapper", "b64url_decode", "b64url_encode"]


class Kind:
    """Value kinds as the wire tells them (plain ints: they index tables on the hot path)."""

    NUMBER = 0
    STRING = 1
    BOOLEAN = 2
    OPAQUE = 3
    OBJLNK = 4  # SenML "vlo", LwM2M JSON "ov": "oid:iid" text
    TIME = 5  # CBOR tag 1 (decoded by cbor2 into an aware datetime)


_KIND_NAMES: Final = ("number", "string", "boolean", "byte string", "object link", "time")

# (type, multiple) of a resource, or None when the model has no definition.
ResourceInfo = tuple[ResourceType, bool] | None


def _num_to_int(raw: object) -> int:
    if type(raw) is int:
        return raw
    if type(raw) is float and raw.is_integer():
        return int(raw)
    raise ValueError("not an integer")


def _to_integer(raw: object) -> Value:
    value = _num_to_int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("outside the signed 64-bit range")
    return value


def _to_unsigned(raw: object) -> Value:
    value = _num_to_int(raw)
    if not 0 <= value <= UINT64_MAX:
        raise ValueError("outside 0..2**64-1")
    return value


def _to_float(raw: object) -> Value:
    if type(raw) is float:
        return raw
    try:
        return float(raw)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError("too large for a double") from None


def _to_time(raw: object) -> Value:
    if type(raw) is float:
        if not math.isfinite(raw):
            raise ValueError("not a finite time")
        raw = math.floor(raw)
    if type(raw) is not int:
        raise ValueError("not a time")
    try:
        return seconds_to_time(raw)
    except InvalidValue as exc:
        raise ValueError(exc.reason) from None


def _time_from_datetime(raw: object) -> Value:
    assert isinstance(raw, _dt.datetime)
    if raw.tzinfo is None:
        raise ValueError("naive time")
    return raw.astimezone(_dt.UTC).replace(microsecond=0)


def _identity(raw: object) -> Value:
    return raw  # type: ignore[return-value]


identity_converter: Final = _identity


def _objlnk(raw: object) -> Value:
    try:
        return ObjectLink.parse(raw)  # type: ignore[arg-type]
    except InvalidValue as exc:
        raise ValueError(exc.reason) from None


def _b64_any(raw: object) -> Value:
    return b64_lenient_decode(raw)  # type: ignore[arg-type]


Converter = Callable[[object], Value]

# (kind, model type) -> converter; pairs that are absent are type mismatches.
BASE_CONVERSIONS: Final[dict[tuple[int, ResourceType], Converter]] = {
    (Kind.NUMBER, ResourceType.INTEGER): _to_integer,
    (Kind.NUMBER, ResourceType.UNSIGNED_INTEGER): _to_unsigned,
    (Kind.NUMBER, ResourceType.FLOAT): _to_float,
    (Kind.NUMBER, ResourceType.TIME): _to_time,
    (Kind.STRING, ResourceType.STRING): _identity,
    (Kind.STRING, ResourceType.CORELNK): _identity,
    (Kind.BOOLEAN, ResourceType.BOOLEAN): _identity,
    (Kind.OPAQUE, ResourceType.OPAQUE): _identity,
    (Kind.OBJLNK, ResourceType.OBJLNK): _objlnk,
    (Kind.TIME, ResourceType.TIME): _time_from_datetime,
}
# Formats without a dedicated object-link label carry links as "oid:iid" strings.
STRING_OBJLNK: Final = {(Kind.STRING, ResourceType.OBJLNK): _objlnk}
# LwM2M JSON carries opaque values as base64 in "sv".
STRING_OPAQUE: Final = {(Kind.STRING, ResourceType.OPAQUE): _b64_any}


def _default_number(raw: object) -> tuple[ResourceType, Value]:
    if type(raw) is int:
        if raw > INT64_MAX:
            return ResourceType.UNSIGNED_INTEGER, _to_unsigned(raw)
        return ResourceType.INTEGER, _to_integer(raw)
    return ResourceType.FLOAT, _to_float(raw)


def _default_time(raw: object) -> tuple[ResourceType, Value]:
    return ResourceType.TIME, _time_from_datetime(raw)


def _default_string(raw: object) -> tuple[ResourceType, Value]:
    return ResourceType.STRING, _identity(raw)


def _default_boolean(raw: object) -> tuple[ResourceType, Value]:
    return ResourceType.BOOLEAN, _identity(raw)


def _default_opaque(raw: object) -> tuple[ResourceType, Value]:
    return ResourceType.OPAQUE, _identity(raw)


def _default_objlnk(raw: object) -> tuple[ResourceType, Value]:
    return ResourceType.OBJLNK, _objlnk(raw)


_DEFAULT_TYPES: Final[dict[int, Callable[[object], tuple[ResourceType, Value]]]] = {
    Kind.NUMBER: _default_number,
    Kind.STRING: _default_string,
    Kind.BOOLEAN: _default_boolean,
    Kind.OPAQUE: _default_opaque,
    Kind.OBJLNK: _default_objlnk,
    Kind.TIME: _default_time,
}


# What the codecs need to know of one resource: (type, multiple, converter per kind), or
# (None, None, ()) when the model does not define it. Converters are indexed by Kind so that
# the hot path does no hashing of enum members (Enum.__hash__ is Python code).
ResourceEntry = tuple[
    ResourceType | None, bool | None, tuple[Callable[[object], Value] | None, ...]
]


_UNKNOWN_ENTRY: Final[ResourceEntry] = (None, None, ())
_NO_MODEL_CACHES: Final[dict[object, dict[Any, object]]] = {}


class ValueMapper:
    """Resolves types and converts wire values for payloads of one format.

    Entries are cached per model (in :meth:`ModelRegistry.derived_cache`, emptied when the
    model changes) and per conversion table, keyed by ``object id << 16 | resource id``.
    """

    __slots__ = ("_cache", "_cache_key", "_conversions", "_fmt", "_model")

    def __init__(
        self,
        fmt: int,
        model: ModelRegistry | None,
        extra: Mapping[tuple[int, ResourceType], Converter] | None = None,
    ) -> None:
        self._fmt = fmt
        self._model = model
        self._conversions = BASE_CONVERSIONS if not extra else {**BASE_CONVERSIONS, **extra}
        key = ("value-mapper", tuple(sorted((k[0], k[1].value) for k in (extra or {}))))
        self._cache_key = key
        cache = _NO_MODEL_CACHES.setdefault(key, {}) if model is None else model.derived_cache(key)
        self._cache: dict[int, ResourceEntry] = cache  # type: ignore[assignment]

    def entry(self, path: LwM2MPath) -> ResourceEntry:
        """The entry of the resource at/above ``path`` (a resource or resource instance path).

        A resource the model does not define (an unknown object, or a resource of another
        version of a known object) has the unknown entry: its values take the type the wire
        gives them rather than sinking the whole payload. Callers that must know find such
        resources with :func:`~aiolwm2m.lwm2m.unknown_resources.unknown_resource_paths`.
        """
        key = (path[0] << 16) | path[2]
        found = self._cache.get(key)
        if found is not None:
            return found
        model = self._model
        entry = _UNKNOWN_ENTRY
        if model is not None:
            obj = model.get(path[0])
            resource = None if obj is None else obj.resources.get(path[2])
            if resource is not None:
                rtype = resource.type
                converters = tuple(self._conversions.get((kind, rtype)) for kind in range(6))
                entry = (rtype, resource.multiple, converters)
        if len(self._cache) > 8192:
            self._cache.clear()
        self._cache[key] = entry
        return entry

    def scratch(self, name: str) -> dict[object, object]:
        """A per-model scratch cache for a format's own derived lookups (see derived_cache)."""
        key = ("scratch", name, self._cache_key)
        if self._model is None:
            return _NO_MODEL_CACHES.setdefault(key, {})
        return self._model.derived_cache(key)  # type: ignore[return-value]

    def derive(self, kind: int, raw: object) -> tuple[ResourceType, Value]:
        """Type and value of a wire value the model has no definition for."""
        return _DEFAULT_TYPES[kind](raw)

    def info(self, path: LwM2MPath) -> ResourceInfo:
        """(type, multiple) for the resource at/above ``path``; None when undefined."""
        rtype, multiple, _ = self.entry(path)
        return None if rtype is None else (rtype, bool(multiple))

    def convert(
        self, path: LwM2MPath, kind: int, raw: object, index: int | None = None
    ) -> tuple[ResourceType, Value, ResourceInfo]:
        """(type, value, resource info) of one wire value at ``path``."""
        rtype, multiple, converters = self.entry(path)
        try:
            if rtype is None:
                derived_type, value = _DEFAULT_TYPES[kind](raw)
                return derived_type, value, None
            converter = converters[kind]
            if converter is None:
                if rtype is ResourceType.NONE:
                    reason = "the resource is executable and carries no value"
                else:
                    reason = f"a {_KIND_NAMES[kind]} cannot hold a {rtype.value} value"
                raise InvalidValue(self._fmt, path, reason, index=index)
            return rtype, converter(raw), (rtype, bool(multiple))
        except ValueError as exc:
            raise InvalidValue(
                self._fmt, path, f"{shown(raw)} is not a valid value: {exc}", index=index
            ) from None




# --- base64 --------------------------------------------------------------------------------------
def b64url_encode(data: bytes) -> str:
    """RFC 8428 "vd": base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def b64url_decode(text: str) -> bytes:
    """Decode "vd"; standard-alphabet and padded input are accepted as well."""
    return b64_lenient_decode(text)


def b64_lenient_decode(text: str) -> bytes:
    if type(text) is not str:
        raise ValueError("not a base64 string")
    try:
        raw = text.encode("ascii").translate(_TO_URLSAFE).rstrip(b"=")
        if len(raw) % 4 == 1:
            raise ValueError("bad base64 length")
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("not base64") from None
