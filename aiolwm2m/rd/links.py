"""Registration payloads: link format in, :class:`RdLink` tuples out, and back.

Bounded before anything is kept: at most ``max_bytes`` of payload and ``max_links`` links
(4.13 beyond either), parsed in linear time. Payloads up to 4 KiB are parsed once per
distinct payload: a fleet of one kind registers the same links, and sharing the parsed
tuples shares their memory too.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import LinkFormatError, TooManyLinks, format_param, parse_link_format
from aiolwm2m.store.rd_records import RdLink, RdRegistration

from .errors import RdError, bad_request

LINK_FORMAT = 40
_CACHED_PAYLOAD = 4096
_CONTROL = frozenset(chr(c) for c in range(33)) | {"\x7f", '"'}


def parse_links(payload: bytes, content_format: int | None, *, max_links: int,
                max_bytes: int) -> tuple[RdLink, ...]:
    if content_format not in (None, LINK_FORMAT):
        raise RdError(Code.UNSUPPORTED_CONTENT_FORMAT,
                      f"registration links must be link format (40), not {content_format}")
    if len(payload) > max_bytes:
        raise RdError(Code.REQUEST_ENTITY_TOO_LARGE, f"links larger than {max_bytes} bytes")
    if len(payload) <= _CACHED_PAYLOAD:
        return _cached_links(payload, max_links)
    return _links(payload, max_links)


@functools.lru_cache(maxsize=4096)
def _cached_links(payload: bytes, max_links: int) -> tuple[RdLink, ...]:
    return _links(payload, max_links)


def _links(payload: bytes, max_links: int) -> tuple[RdLink, ...]:
    try:
        parsed = parse_link_format(payload, max_links=max_links)
    except TooManyLinks:
        raise RdError(Code.REQUEST_ENTITY_TOO_LARGE, f"more than {max_links} links",
                      reason="rd-too-many-links") from None
    except LinkFormatError as e:
        raise bad_request(f"malformed link format: {e.reason} at offset {e.position}"
                          ) from None
    for link in parsed:
        # An empty target is the base: allowed for the member links of RD groups
        # (``<>;ep="lamp-1"``, see .groups), refused elsewhere.
        if link.target or not link.has("ep"):
            check_target(link.target)
    return tuple(RdLink(link.target, tuple(link.params)) for link in parsed)


def check_target(target: str) -> None:
    if not target or any(c in _CONTROL for c in target):
        raise bad_request("link target is empty or holds spaces, quotes or control characters")


def format_links(links: Iterable[RdLink]) -> str:
    return ",".join(format_rd_link(link) for link in links)


def format_rd_link(link: RdLink) -> str:
    parts = [f"<{link.target}>"]
    parts.extend(format_param(n, v) for n, v in link.params)
    return ";".join(parts)


def check_size(links: tuple[RdLink, ...], *, max_links: int, max_bytes: int) -> None:
    """For link sets made by a PATCH: the same bounds as a registration payload."""
    if len(links) > max_links:
        raise RdError(Code.REQUEST_ENTITY_TOO_LARGE, f"more than {max_links} links",
                      reason="rd-too-many-links")
    if len(format_links(links)) > max_bytes:
        raise RdError(Code.REQUEST_ENTITY_TOO_LARGE, f"links larger than {max_bytes} bytes")


def etag_of(links_text: str, *attributes: object) -> bytes:
    """The ETag of a registration resource: 8 bytes of a hash of its links and parameters,
    so it changes exactly when what a GET would show (or a PATCH would act on) changes."""
    h = hashlib.blake2b(links_text.encode("utf-8"), digest_size=8)
    h.update(repr(attributes).encode("utf-8"))
    return h.digest()


def rd_etag(reg: RdRegistration) -> bytes:
    return etag_of(format_links(reg.links), reg.base, reg.lifetime, reg.endpoint_types,
                   reg.extra)
