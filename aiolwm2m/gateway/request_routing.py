"""Requests for end devices, as the gateway receives and answers them (sans-IO).

``GET /dev1/3303/0`` reaches end device ``dev1`` as ``GET /3303/0``; its answer goes back
with ``/dev1`` in front of every payload name (and of a Create's Location-Path). A
Discover answer keeps its links as they are: the Gateway TS wants no prefix there. A
composite request at the gateway's root is routed by the prefixes of the names it carries.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, UnsupportedContentFormat
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat
from aiolwm2m.lwm2m.formats.cbor_support import load_one
from aiolwm2m.lwm2m.formats.prefixed_names import (
    NAMED_FORMATS,
    add_prefix,
    split_by_prefix,
    strip_prefix,
)

__all__ = ["composite_groups", "inner_request", "outer_response", "outer_result",
           "prefix_of"]

CF = ContentFormat
_SENML = (CF.SENML_JSON, CF.SENML_CBOR)


def prefix_of(segments: tuple[str, ...]) -> str | None:
    """The prefix a request's Uri-Path starts with, or None for the gateway's own paths
    (object ids, or the root)."""
    if not segments:
        return None
    first = segments[0]
    if not first or (first.isascii() and first.isdigit()):
        return None
    return first


def inner_request(request: Message, prefix: str, payload: bytes | None = None) -> Message:
    """The request as the end device sees it: without the prefix in its path and names
    (``payload``: already stripped, for a composite request split by prefix)."""
    inner = request.copy()
    inner.uri_path = request.uri_path[1:] if prefix_of(request.uri_path) == prefix else ()
    if payload is not None:
        inner.payload = payload
    else:
        fmt = request.content_format
        if request.payload and fmt in NAMED_FORMATS:
            try:
                inner.payload = strip_prefix(fmt, request.payload, prefix)
            except LwM2MError as e:
                raise BadRequest(str(e)) from None
    return inner


def outer_response(response: Message, prefix: str) -> Message:
    """The end device's answer with its prefix back in names and Location-Path."""
    fmt = response.content_format
    if response.payload and fmt in NAMED_FORMATS and response.code >> 5 == 2:
        response.payload = add_prefix(fmt, response.payload, prefix)
    location = response.location_path
    if location:
        response.location_path = (prefix, *location)
    return response


def outer_result(result: Message | Awaitable[Message], prefix: str
                 ) -> Message | Awaitable[Message]:
    if isinstance(result, Message):
        return outer_response(result, prefix)

    async def finish() -> Message:
        return outer_response(await result, prefix)

    return finish()


def composite_groups(request: Message) -> dict[str | None, bytes]:
    """The names of a FETCH or iPATCH at the root, by prefix (None: the gateway's own),
    each payload with its prefix stripped."""
    fmt = request.content_format
    if fmt in _SENML:
        try:
            return split_by_prefix(fmt, request.payload)
        except LwM2MError as e:
            raise BadRequest(f"bad payload: {e}") from None
    if fmt == CF.LWM2M_CBOR and request.code == Code.IPATCH:
        return _lwm2m_cbor_group(request.payload)
    if fmt is None or fmt not in NAMED_FORMATS:
        raise UnsupportedContentFormat(f"content format {fmt} cannot name paths")
    return {None: request.payload}


def _lwm2m_cbor_group(payload: bytes) -> dict[str | None, bytes]:
    """An LwM2M CBOR Write-Composite names one end device (a text key) or none."""
    try:
        top = load_one(CF.LWM2M_CBOR, payload)
    except LwM2MError as e:
        raise BadRequest(f"bad payload: {e}") from None
    if not isinstance(top, dict):
        raise BadRequest("an LwM2M CBOR payload is a map")
    prefixes = {k if isinstance(k, str) else k[0] if isinstance(k, tuple) and k and
                isinstance(k[0], str) else None for k in top}
    if len(prefixes) != 1:
        raise BadRequest("a Write-Composite in LwM2M CBOR names one end device")
    prefix = next(iter(prefixes))
    if prefix is None:
        return {None: payload}
    try:
        return {prefix: strip_prefix(CF.LWM2M_CBOR, payload, prefix)}
    except LwM2MError as e:
        raise BadRequest(f"bad payload: {e}") from None
