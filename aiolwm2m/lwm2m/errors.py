"""The one exception hierarchy of :mod:`aiolwm2m.lwm2m`.

Every error carries ``coap_code``, the response code the server or client edge should answer
with when the error comes from a request it received (a string such as ``"4.00"``, so that this
sans-IO layer does not depend on the CoAP message types). The mapping used here:

* ``4.00 Bad Request``: a malformed path, payload, value or attribute;
* ``4.15 Unsupported Content-Format``: a request body in a format this layer cannot decode for
  that path; when the format came from an Accept option, answer ``4.06 Not Acceptable``
  instead (:attr:`UnsupportedFormat.accept_coap_code`);
* ``5.00 Internal Server Error``: anything else (model definition problems).

Decoders raise nothing but :class:`CodecError` subclasses: errors of ``json``, ``cbor2``,
``struct`` or UTF-8 decoding are caught and wrapped with the position where they happened.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CodecError",
    "DdfError",
    "InvalidAttribute",
    "InvalidPath",
    "InvalidPayload",
    "InvalidValue",
    "LwM2MError",
    "ModelError",
    "PathNotAllowed",
    "UnsupportedFormat",
    "shown",
]

_INT_REPR_BITS = 128


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about peer input.

    Safe for any value: an integer too large to print cheaply (``int`` refuses beyond 4300
    digits with a bare ValueError) is described by its size instead, and a value whose repr
    fails is named by its type, so that building an error message never raises.
    """
    if type(value) is int and value.bit_length() > _INT_REPR_BITS:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except ValueError:
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LwM2MError(Exception):
    """Base of every error raised by the LwM2M data model and content formats."""

    coap_code: ClassVar[str] = "5.00"


class InvalidPath(LwM2MError, ValueError):
    """A path string or id sequence is not a valid LwM2M path."""

    coap_code: ClassVar[str] = "4.00"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid LwM2M path {shown(path, 40)}: {reason}")
        self.path = path
        self.reason = reason


class CodecError(LwM2MError):
    """A content format could not encode or decode a payload.

    ``fmt`` is the numeric content format (``None`` when no format was involved, e.g. in
    :func:`aiolwm2m.lwm2m.values.coerce_value`), ``path`` the LwM2M path the problem concerns
    (as text), ``offset`` a byte offset into the payload and ``index`` a record index (SenML,
    LwM2M JSON) when those are known.
    """

    coap_code: ClassVar[str] = "4.00"

    def __init__(
        self,
        fmt: int | None,
        path: object,
        reason: str,
        *,
        offset: int | None = None,
        index: int | None = None,
    ) -> None:
        self.fmt = fmt
        self.path = None if path is None else str(path)
        self.reason = reason
        self.offset = offset
        self.index = index
        super().__init__(self._describe())

    def _describe(self) -> str:
        where: list[str] = []
        if self.fmt is not None:
            where.append(f"content format {shown(self.fmt, 12)}")
        if self.path is not None:
            where.append(f"path {self.path}")
        if self.index is not None:
            where.append(f"record {self.index}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        prefix = f"{type(self).__name__} ({', '.join(where)})" if where else type(self).__name__
        return f"{prefix}: {self.reason}"


class InvalidPayload(CodecError):
    """The bytes are not a well-formed payload of the format (truncated, bad syntax...)."""


class InvalidValue(CodecError):
    """A value does not fit the resource type (wrong type, out of range, bad text form)."""


class UnsupportedFormat(CodecError):
    """The format cannot carry this node, path level or operation (or is unknown)."""

    coap_code: ClassVar[str] = "4.15"
    accept_coap_code: ClassVar[str] = "4.06"


class PathNotAllowed(CodecError):
    """A path is outside the request path, or not allowed by the model for this node."""


class ModelError(LwM2MError):
    """An object or resource definition is inconsistent or missing."""


class DdfError(ModelError):
    """A DDF XML document could not be loaded."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"cannot load DDF {source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidAttribute(LwM2MError, ValueError):
    """A notification attribute (Write-Attributes query, Discover parameter) is invalid."""

    coap_code: ClassVar[str] = "4.00"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid attribute {shown(name, 20)}: {reason}")
        self.name = name
        self.reason = reason
