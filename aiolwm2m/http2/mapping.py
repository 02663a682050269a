"""CoAP response codes and content formats as HTTP statuses and media types, both ways.

One table each, so that a message keeps its meaning when it crosses between the bindings:
a CoAP code becomes exactly one HTTP status and that status becomes the same code again,
and a content format becomes one media type that names it again.

Statuses. 4.xx and 5.xx map digit for digit (4.04 is 404, 5.03 is 503). The success codes
cannot all keep their natural HTTP meaning and still map one to one: 2.05 Content is 200 OK,
2.01 Created 201, 2.04 Changed 204 No Content and 2.03 Valid 304 Not Modified, as RFC 8075
has them; 2.02 Deleted, which RFC 8075 also sends as 200 or 204, takes 205 Reset Content
(done; nothing to show), the one 2xx left whose meaning fits. 2.31 Continue has no use here:
block-wise transfer does not exist over HTTP/2 (messages travel whole).

Media types. Every content format LwM2M uses has a registered media type; any other number
travels as ``application/x.coap-ct;ct=N`` so that nothing is lost in a round trip (the
pre-1.0 TLV and JSON numbers 1542 and 1543 among them).
"""

from __future__ import annotations

from typing import Final

from aiolwm2m.coap.codes import Code

#: CoAP code -> HTTP status (see the module docstring for the choices).
_STATUS_OF_CODE: Final[dict[int, int]] = {
    Code.CREATED: 201,
    Code.DELETED: 205,
    Code.VALID: 304,
    Code.CHANGED: 204,
    Code.CONTENT: 200,
}
for _code in Code:
    if 4 <= (_code >> 5) <= 5:
        _STATUS_OF_CODE[_code] = (_code >> 5) * 100 + (_code & 0x1F)
_CODE_OF_STATUS: Final[dict[int, int]] = {v: k for k, v in _STATUS_OF_CODE.items()}
del _code

#: HTTP statuses whose responses carry no body (RFC 9110 section 6.4.1 and 15.3.6).
BODYLESS_STATUSES: Final = frozenset({204, 205, 304})

_MEDIA_TYPE_OF: Final[dict[int, str]] = {
    0: "text/plain;charset=utf-8",
    40: "application/link-format",
    42: "application/octet-stream",
    60: "application/cbor",
    62: "application/multipart-core",
    110: "application/senml+json",
    112: "application/senml+cbor",
    11542: "application/vnd.oma.lwm2m+tlv",
    11543: "application/vnd.oma.lwm2m+json",
    11544: "application/vnd.oma.lwm2m+cbor",
}
_FORMAT_OF: Final[dict[str, int]] = {
    v.partition(";")[0]: k for k, v in _MEDIA_TYPE_OF.items()}
#: The media type of content formats without a registered one.
GENERIC_MEDIA_TYPE: Final = "application/x.coap-ct"
MULTIPART_CORE: Final = 62


class MappingError(ValueError):
    """A status or media type with no CoAP counterpart."""


def http_status(code: int) -> int:
    """The HTTP status of a CoAP response code."""
    status = _STATUS_OF_CODE.get(code)
    if status is None:
        raise MappingError(f"CoAP code {code >> 5}.{code & 0x1F:02d} has no HTTP status here")
    return status


def coap_code(status: int) -> int:
    """The CoAP response code of an HTTP status."""
    found = _CODE_OF_STATUS.get(status)
    if found is None:
        raise MappingError(f"HTTP status {status} has no CoAP code")
    return found


def media_type(content_format: int) -> str:
    known = _MEDIA_TYPE_OF.get(content_format)
    if known is not None:
        return known
    return f"{GENERIC_MEDIA_TYPE};ct={content_format}"


def content_format(value: str) -> int:
    """The content format a Content-Type (or one Accept entry) names. Parameters are
    ignored except ``charset`` of text/plain (UTF-8 only) and ``ct`` of the generic type."""
    if len(value) > 128:
        raise MappingError("media type longer than 128 characters")
    kind, _, params = value.partition(";")
    kind = kind.strip().lower()
    if kind == "text/plain":
        charset = _parameter(params, "charset")
        if charset is not None and charset.lower() not in ("utf-8", "us-ascii"):
            raise MappingError("text/plain is taken in UTF-8 only")
        return 0
    found = _FORMAT_OF.get(kind)
    if found is not None:
        return found
    if kind == GENERIC_MEDIA_TYPE:
        number = _parameter(params, "ct")
        if number is not None and number.isdigit() and len(number) <= 5 and int(
                number) <= 0xFFFF:
            return int(number)
        raise MappingError(f"{GENERIC_MEDIA_TYPE} needs ct=0..65535")
    raise MappingError("unsupported media type")


def accepted_format(value: str) -> int:
    """The content format of an Accept header: its first entry, ``*/*`` meaning none."""
    first = value.split(",", 1)[0].strip()
    if first.partition(";")[0].strip() in ("*/*", ""):
        return -1
    return content_format(first)


def _parameter(params: str, name: str) -> str | None:
    for item in params.split(";"):
        key, eq, val = item.partition("=")
        if eq and key.strip().lower() == name:
            return val.strip().strip('"')
    return None


__all__ = ["BODYLESS_STATUSES", "GENERIC_MEDIA_TYPE", "MULTIPART_CORE", "MappingError",
           "accepted_format", "coap_code", "content_format", "http_status", "media_type"]
