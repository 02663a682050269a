"""What the Resource Directory lets a peer make it hold and compute (``ServerConfig.rd_limits``)."""

from __future__ import annotations

from dataclasses import dataclass

#: RFC 9176 section 5.3: the lifetime of a registration that names none (25 hours).
RD_DEFAULT_LIFETIME = 90000


@dataclass(frozen=True)
class RdLimits:
    #: Links one registration may hold (4.13 beyond): a plain CoAP node lists a few to a
    #: few dozen resources; each link is kept in memory and indexed.
    max_links: int = 1000
    #: Largest registration payload (link format, or a PATCH document) in bytes (4.13
    #: beyond); also the most a simple registration reads from a node's /.well-known/core.
    max_registration_bytes: int = 64 * 1024
    #: Registrations in the directory (5.03 beyond): bounds its memory (~1-2 KB each with a
    #: handful of links). LwM2M registrations are not counted here.
    max_registrations: int = 200_000
    #: Registrations created by unauthenticated (NoSec) peers of one IP address (4.29
    #: beyond; 0 turns it off): one forged or careless source cannot fill the directory.
    #: Authenticated peers are bounded by their credentials (and the total).
    max_registrations_per_address: int = 100
    #: Links in one lookup answer: ``count`` above it is 4.00, and a lookup without
    #: ``count`` answers at most this many (page on with ``page``/``count``). Bounds the
    #: CPU of a lookup's output and the block-wise cache that serves it.
    max_lookup_results: int = 256
    #: Registrations one CoAP lookup may look at (4.00 beyond, naming the indexed
    #: attributes): a lookup by indexed attributes looks at what they find, one by other
    #: attributes alone at every registration (a few microseconds each). The REST API's
    #: lookups (operators, with a token) are not bounded.
    max_lookup_scan: int = 10_000
    #: Lookups observed at once on each transport, and per peer IP address; beyond, the
    #: lookup is answered without Observe (RFC 7641 allows a server to decline).
    max_lookup_observers: int = 64
    max_lookup_observers_per_address: int = 4
    #: Simple registrations (``POST /.well-known/rd``) whose fetch of the node's
    #: /.well-known/core is in progress, per transport (5.03 with Max-Age beyond; one per
    #: source address at a time), and how long one fetch may take.
    simple_registration_fetches: int = 4
    simple_registration_timeout: float = 15.0
    #: Lifetime of a registration that gives no ``lt``.
    default_lifetime: int = RD_DEFAULT_LIFETIME
    #: Whether LwM2M registrations appear in lookups (``et=oma.lwm2m``).
    lwm2m_in_lookups: bool = True


DEFAULT_RD_LIMITS = RdLimits()
