"""The RD registration and lookup interfaces from the registering side (RFC 9176), sans-IO.

What a registration says about its endpoint (:class:`RdRegistration`), the requests that
carry it (register, simple registration, update, removal, discovery, lookup) and what the
RD's answers mean (a location, a resource path, or :class:`RdRejected` with the code).
Nothing here touches a socket or a clock: times come in as arguments.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.linkformat import Link, LinkFormatError, format_link_format, parse_link_format
from aiolwm2m.coap.message import Message, split_path

LINK_FORMAT = 40
#: RFC 9176: endpoint and sector names are at most 63 bytes; lifetimes 1..2**32-1 seconds,
#: 90000 when the registration names none.
MAX_NAME_BYTES = 63
MAX_LIFETIME = 4294967295
DEFAULT_LIFETIME = 90000
#: Resource types that /.well-known/core of an RD announces its interfaces by.
RT_REGISTRATION = "core.rd"
RT_LOOKUP = {"ep": "core.rd-lookup-ep", "res": "core.rd-lookup-res"}
#: Where a simple registration goes (RFC 9176 section 5.1).
SIMPLE_REGISTRATION_PATH = (".well-known", "rd")
#: A discovery or lookup answer holding more links than this is refused rather than kept.
MAX_DISCOVERED_LINKS = 10_000
#: Query names the registration sets from its own fields, and lookup controls and link
#: attributes, which an RD would read as something other than a registration attribute.
RESERVED_NAMES = frozenset({"ep", "d", "lt", "base", "et", "page", "count", "href",
                            "anchor", "rt", "if", "rel"})
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")
_BASE_SCHEMES = ("coap://", "coaps://", "coap+tcp://", "coaps+tcp://", "coap+ws://",
                 "coaps+ws://", "http://", "https://")

Attributes = tuple[tuple[str, str | None], ...]


class RdRejected(Exception):
    """The RD answered with an error code; ``diagnostic`` is its (shortened) text."""

    def __init__(self, operation: str, code: int, diagnostic: str = "",
                 max_age: int | None = None) -> None:
        detail = f": {diagnostic}" if diagnostic else ""
        super().__init__(f"{operation} answered {code_str(code)}{detail}")
        self.operation = operation
        self.code = code
        self.diagnostic = diagnostic
        #: The Max-Age of a 5.03 or 4.29: how long the RD asked us to wait.
        self.max_age = max_age


class RdProtocolError(Exception):
    """The RD's answer cannot be used (no Location-Path, no registration resource...)."""


def _check_name(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"{what} is longer than {MAX_NAME_BYTES} bytes (RFC 9176)")


def check_lifetime(value: int) -> int:
    if not 1 <= value <= MAX_LIFETIME:
        raise ValueError(f"lifetime {value} is outside 1..{MAX_LIFETIME} seconds")
    return value


def check_base(base: str) -> str:
    if not base.startswith(_BASE_SCHEMES) or "?" in base or "#" in base or " " in base:
        raise ValueError(f"base {base[:60]!r} is not a coap(s)/http(s) URI without query")
    return base


def links_of(value: str | bytes | Iterable[Link] | None) -> tuple[Link, ...]:
    """Links from link-format text (or bytes), or an iterable of :class:`Link`; a
    ValueError says where the text is malformed."""
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        try:
            return tuple(parse_link_format(value))
        except LinkFormatError as e:
            raise ValueError(f"links: {e}") from None
    return tuple(value)


def attributes_of(extra: Mapping[str, str | None] | Iterable[tuple[str, str | None]]
                  ) -> Attributes:
    items = tuple(extra.items()) if isinstance(extra, Mapping) else tuple(extra)
    seen: set[str] = set()
    for name, value in items:
        if not name or any(c not in _NAME_CHARS for c in name):
            raise ValueError(f"{name[:30]!r} is not a link attribute name")
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} cannot be an extra attribute (it has its own "
                             "setting, or is a lookup or link attribute)")
        if name in seen:
            raise ValueError(f"extra attribute {name!r} is given twice")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"the value of {name!r} must be text or None")
        seen.add(name)
    return items


@dataclass(frozen=True)
class RdRegistration:
    """What an endpoint registers: its name ``endpoint`` (ep), sector ``sector`` (d),
    endpoint types (et, repeated), ``base`` (None: the RD takes the address the
    registration came from), ``lifetime`` (lt, seconds), its ``links`` and ``extra``
    registration attributes. ``endpoint`` may be None only when the RD derives it from the
    credentials of a secure connection."""

    endpoint: str | None
    sector: str | None = None
    endpoint_types: tuple[str, ...] = ()
    base: str | None = None
    lifetime: int = DEFAULT_LIFETIME
    links: tuple[Link, ...] = ()
    extra: Attributes = field(default=())

    def __post_init__(self) -> None:
        if self.endpoint is not None:
            _check_name(self.endpoint, "endpoint name (ep)")
        if self.sector is not None:
            _check_name(self.sector, "sector (d)")
        for et in self.endpoint_types:
            if not et or any(c.isspace() for c in et):
                raise ValueError(f"endpoint type {et!r} must be one non-blank word")
        check_lifetime(self.lifetime)
        if self.base is not None:
            check_base(self.base)
        attributes_of(self.extra)

    @classmethod
    def build(cls, endpoint: str | None, *, sector: str | None = None,
              endpoint_types: str | Sequence[str] = (), base: str | None = None,
              lifetime: int = DEFAULT_LIFETIME,
              links: str | bytes | Iterable[Link] | None = None,
              extra: Mapping[str, str | None] | Iterable[tuple[str, str | None]] = ()
              ) -> RdRegistration:
        """The same from looser input: links as link-format text, extra attributes as a
        dict, one endpoint type as a string."""
        types = (endpoint_types,) if isinstance(endpoint_types, str) else tuple(endpoint_types)
        return cls(endpoint, sector, types, base, lifetime, links_of(links),
                   attributes_of(extra))

    def payload(self) -> bytes:
        return format_link_format(self.links).encode("utf-8")

    def query(self, *, simple: bool = False) -> list[str]:
        """The Uri-Query items of a registration (a simple one has no base: RFC 9176
        section 5.1 makes its base the address it came from)."""
        out = [] if self.endpoint is None else [f"ep={self.endpoint}"]
        if self.sector is not None:
            out.append(f"d={self.sector}")
        out.append(f"lt={self.lifetime}")
        if self.base is not None and not simple:
            out.append(f"base={self.base}")
        out.extend(f"et={et}" for et in self.endpoint_types)
        out.extend(_item(k, v) for k, v in self.extra)
        return out


def _item(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


# -- requests --------------------------------------------------------------------------


def register_request(path: Sequence[str], registration: RdRegistration) -> Message:
    """``POST {registration resource}?ep&d&lt&base&et&...`` with the links."""
    return Message.request(Code.POST, tuple(path), query=registration.query(),
                           payload=registration.payload(), content_format=LINK_FORMAT)


def simple_register_request(registration: RdRegistration) -> Message:
    """``POST /.well-known/rd?ep&lt...``, empty: the RD fetches our /.well-known/core."""
    return Message.request(Code.POST, SIMPLE_REGISTRATION_PATH,
                           query=registration.query(simple=True))


def update_request(location: Sequence[str], *, lifetime: int | None = None,
                   base: str | None = None, extra: Attributes = ()) -> Message:
    """``POST {location}?lt&base&...``: refreshes the registration, changing what is
    given (nothing: a plain refresh)."""
    query = [] if lifetime is None else [f"lt={lifetime}"]
    if base is not None:
        query.append(f"base={base}")
    query.extend(_item(k, v) for k, v in extra)
    return Message.request(Code.POST, tuple(location), query=query)


def remove_request(location: Sequence[str]) -> Message:
    return Message.request(Code.DELETE, tuple(location))


def discovery_request(resource_type: str) -> Message:
    """``GET /.well-known/core?rt=...``: where the RD serves one of its interfaces."""
    return Message.request(Code.GET, (".well-known", "core"), query=[f"rt={resource_type}"],
                           accept=LINK_FORMAT)


def check_paging(page: int | None, count: int | None) -> None:
    if page is not None and not 0 <= page <= MAX_LIFETIME:
        raise ValueError(f"page {page} is outside 0..{MAX_LIFETIME}")
    if count is not None and not 1 <= count <= MAX_LIFETIME:
        raise ValueError(f"count {count} is outside 1..{MAX_LIFETIME}")


def lookup_request(path: Sequence[str], filters: Iterable[tuple[str, str | None]] = (), *,
                   page: int | None = None, count: int | None = None) -> Message:
    """``GET {lookup resource}?filter...&page&count`` (RFC 9176 section 7)."""
    check_paging(page, count)
    query = [_item(k, v) for k, v in filters]
    if page is not None:
        query.append(f"page={page}")
    if count is not None:
        query.append(f"count={count}")
    return Message.request(Code.GET, tuple(path), query=query, accept=LINK_FORMAT)


# -- responses -------------------------------------------------------------------------


def diagnostic(response: Message, limit: int = 120) -> str:
    """The text of an error response, shortened and made printable (it is the RD's, and
    ends up in logs and events)."""
    if not response.payload or response.content_format not in (None, 0):
        return ""
    text = response.payload[: limit * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(operation: str, response: Message, *expected: int) -> None:
    if response.code not in expected:
        max_age = response.max_age if response.code in (Code.SERVICE_UNAVAILABLE,
                                                        Code.TOO_MANY_REQUESTS) else None
        raise RdRejected(operation, response.code, diagnostic(response), max_age)


def location_of(response: Message) -> tuple[str, ...]:
    """The registration resource from the 2.01 of a registration."""
    check("registration", response, Code.CREATED, Code.CHANGED)
    location = response.location_path
    if not location:
        raise RdProtocolError("the RD answered the registration without Location-Path")
    return tuple(location)


def parse_links(response: Message, operation: str) -> list[Link]:
    check(operation, response, Code.CONTENT)
    if response.content_format not in (None, LINK_FORMAT):
        raise RdProtocolError(f"{operation}: the RD answered with content format "
                              f"{response.content_format}, not link-format")
    try:
        return parse_link_format(response.payload, max_links=MAX_DISCOVERED_LINKS)
    except LinkFormatError as e:
        raise RdProtocolError(f"{operation}: the RD's link-format is malformed: "
                              f"{e.reason}") from None


def resource_path(response: Message, resource_type: str) -> tuple[str, ...]:
    """The path of the first link of type ``resource_type`` in a /.well-known/core answer.
    Only links on the RD itself count: a relative reference, or an absolute one whose
    path is taken (the interfaces of one RD share its address in every RD known)."""
    for link in parse_links(response, "discovery"):
        if resource_type in link.values("rt") and link.get("anchor") is None:
            return path_of(link.target)
    raise RdProtocolError(f"the RD's /.well-known/core lists no rt={resource_type} resource")


def path_of(target: str) -> tuple[str, ...]:
    """The path segments of a link target (``/rd``, ``/resourcedirectory/`` keeps its
    trailing empty segment, ``coap://host/rd`` -> ``("rd",)``)."""
    scheme, sep, rest = target.partition("://")
    if sep and scheme:
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else ""
    target = target.split("?", 1)[0].split("#", 1)[0]
    return split_path(target)


def location_text(location: Sequence[str]) -> str:
    return "/" + "/".join(location)


# -- timing ----------------------------------------------------------------------------


def refresh_due(updated_at: float, lifetime: int, max_transmit_wait: float,
                rng: random.Random, jitter: float = 0.1) -> float:
    """When to refresh a registration made (or refreshed) at ``updated_at``: early enough
    that the refresh arrives before ``lifetime`` ends even after every retransmission, and
    spread by up to ``jitter`` of the lifetime earlier so that a fleet registered together
    does not refresh together."""
    margin = min(lifetime / 4.0, max_transmit_wait)
    latest = max(1.0, lifetime - margin)
    spread = latest * jitter * rng.random()
    return updated_at + max(1.0, latest - spread)
