"""Configuration values of the DTLS/TLS servers and clients."""

from __future__ import annotations

from dataclasses import dataclass

from .credentials import RpkCredentials, X509Credentials
from .lookup import CredentialLookup


@dataclass(frozen=True)
class ServerCredentials:
    """What a server accepts and presents.

    ``psk``: accept PSK clients, keys come from ``lookup.psk_key``.
    ``rpk``: our raw public key pair; clients' keys are judged by ``lookup.rpk_allowed``.
    ``x509``: our chain and key; ``x509.trust_anchors_pem`` and ``x509.usage`` judge client
    certificates, then ``lookup.x509_allowed`` decides on the authenticated identity.
    """

    lookup: CredentialLookup
    psk: bool = True
    psk_hint: bytes | None = None
    rpk: RpkCredentials | None = None
    x509: X509Credentials | None = None


@dataclass(frozen=True)
class DtlsServerConfig:
    max_sessions: int = 10_000
    """Established sessions plus handshakes in progress; new handshakes beyond it are refused."""
    max_handshakes: int = 512
    """Handshakes in progress (after a verified cookie) at any one time; when they are all
    taken, a new one replaces the oldest, so stalled handshakes cannot lock clients out."""
    max_handshakes_per_address: int = 8
    """Handshakes in progress from one source (an IPv4 address, an IPv6 /64); more are
    refused until one ends, so one host cannot replace everyone else's handshakes. Eight
    leaves room for a few devices behind one NAT reconnecting at once."""
    handshake_timeout: float = 30.0
    retransmit_ms: int = 1000
    idle_timeout: float | None = 3600.0
    """Established sessions without traffic for this long are closed (close_notify sent)."""
    mtu: int = 1232
    max_datagram_size: int = 2**14 + 2048 + 13
    cookie_lifetime: float = 60.0
    resumption: bool = True
    """Issue RFC 5077 session tickets (stateless on the server: no session cache)."""
    priority: str | None = None
    """A GnuTLS priority string replacing the one built from the enabled modes."""


DEFAULT_DTLS_SERVER_CONFIG = DtlsServerConfig()


@dataclass(frozen=True)
class TlsServerConfig:
    alpn: tuple[str, ...] = ("coap",)
    alpn_required: bool = False
    """Also refuse clients that send no ALPN at all. RFC 8323 makes "coap" a MUST for
    clients, but libcoap 4.3 (Debian 12) sends no ALPN, so the default lets them in. A client
    that offers ALPN without any of ``alpn`` is always refused (no_application_protocol)."""
    handshake_timeout: float = 30.0
    resumption: bool = True
    priority: str | None = None
