"""CoAP Content-Format numbers of the LwM2M payload formats."""

from __future__ import annotations

import enum

__all__ = ["ContentFormat", "format_label"]


class ContentFormat(enum.IntEnum):
    TEXT = 0
    LINK_FORMAT = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    OLD_TLV = 1542
    OLD_JSON = 1543

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ContentFormat.TEXT: "text/plain;charset=utf-8",
    ContentFormat.LINK_FORMAT: "application/link-format",
    ContentFormat.OPAQUE: "application/octet-stream",
    ContentFormat.CBOR: "application/cbor",
    ContentFormat.SENML_JSON: "application/senml+json",
    ContentFormat.SENML_CBOR: "application/senml+cbor",
    ContentFormat.TLV: "application/vnd.oma.lwm2m+tlv",
    ContentFormat.LWM2M_JSON: "application/vnd.oma.lwm2m+json",
    ContentFormat.LWM2M_CBOR: "application/vnd.oma.lwm2m+cbor",
    ContentFormat.OLD_TLV: "application/vnd.oma.lwm2m+tlv (pre-1.0 number)",
    ContentFormat.OLD_JSON: "application/vnd.oma.lwm2m+json (pre-1.0 number)",
}


def format_label(fmt: int) -> str:
    """``"11542 (application/vnd.oma.lwm2m+tlv)"`` or just the number when unknown."""
    try:
        return f"{fmt} ({ContentFormat(fmt).media_type})"
    except ValueError:
        return str(fmt)
