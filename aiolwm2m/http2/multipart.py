"""``application/multipart-core`` (RFC 8710, CoAP content format 62): several contents in
one message (HTT-002).

A CBOR array with an even number of elements: a content format (unsigned integer), then its
representation (a byte string, or null for a part that is absent), and so on. The parts are
carried unchanged: a SenML CBOR part is exactly the payload CoAP would have carried.
"""

from __future__ import annotations

from typing import Final

from aiolwm2m.lwm2m.errors import InvalidPayload
from aiolwm2m.lwm2m.formats.cbor_support import dump, load_one

from .mapping import MULTIPART_CORE

#: Parts in one multipart-core body (a bound on what one message makes us allocate).
MAX_PARTS: Final = 256


class MultipartError(ValueError):
    pass


Part = tuple[int | None, bytes | None]


def encode_multipart(parts: list[Part]) -> bytes:
    """``parts`` as (content format, payload); a None payload is an absent part (its
    format is then written as 0), a None format with a payload is refused."""
    items: list[object] = []
    for fmt, payload in parts:
        if payload is None:
            items += [fmt if fmt is not None else 0, None]
            continue
        if fmt is None or not 0 <= fmt <= 0xFFFF:
            raise ValueError("every present part needs a content format 0..65535")
        items += [fmt, payload]
    return dump(items)


def decode_multipart(body: bytes) -> list[Part]:
    try:
        items = load_one(MULTIPART_CORE, body)
    except InvalidPayload as e:
        raise MultipartError(f"multipart-core body is not CBOR: {e}") from None
    if not isinstance(items, list) or len(items) % 2:
        raise MultipartError("multipart-core is an array of an even number of elements")
    if len(items) > 2 * MAX_PARTS:
        raise MultipartError(f"more than {MAX_PARTS} parts")
    parts: list[Part] = []
    for i in range(0, len(items), 2):
        fmt, payload = items[i], items[i + 1]
        if type(fmt) is not int or not 0 <= fmt <= 0xFFFF:
            raise MultipartError(f"part {i // 2}: content format must be 0..65535")
        if payload is None:
            parts.append((None, None))
        elif isinstance(payload, bytes):
            parts.append((fmt, payload))
        else:
            raise MultipartError(f"part {i // 2}: representation must be bytes or null")
    return parts
