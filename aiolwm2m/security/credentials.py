"""Credential types for the three LwM2M security modes, and the authenticated peer identity.

The types are plain immutable values (bytes in, bytes out) so the platform can build them
straight from Security Object (0) resources or from its security store; GnuTLS objects are
made from them later, once per server or client (see ``native.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from aiolwm2m.principals import escape_identity, psk_principal, rpk_principal, x509_principal

from .errors import ConfigurationError
from .keys import generate_p256_private_key, normalize_spki, spki_from_private_key
from .pem import certificates_der, der_to_pem, private_key_as_pem, private_key_der


@dataclass(frozen=True, slots=True)
class PskCredentials:
    """LwM2M Security mode 0: PSK identity (resource 3) and key (resource 5)."""

    identity: bytes
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.identity:
            raise ConfigurationError("PSK identity is empty")
        if not self.key:
            raise ConfigurationError("PSK key is empty")
        if len(self.identity) > 65535 or len(self.key) > 65535:
            raise ConfigurationError("PSK identity and key are limited to 65535 bytes")


@dataclass(frozen=True, slots=True)
class RpkCredentials:
    """LwM2M Security mode 1 (RFC 7250 raw public key): our key pair.

    ``private_key`` is PEM (``EC PRIVATE KEY``/``PRIVATE KEY``) or DER; ``public_key_der`` is
    the DER SubjectPublicKeyInfo and is derived from the private key when omitted.
    """

    private_key: bytes = field(repr=False)
    public_key_der: bytes = b""

    def __post_init__(self) -> None:
        derived = spki_from_private_key(self.private_key)
        if not self.public_key_der:
            object.__setattr__(self, "public_key_der", derived)
        elif normalize_spki(self.public_key_der) != derived:
            raise ConfigurationError("the RPK public key does not belong to the private key")

    @property
    def private_key_der(self) -> bytes:
        return private_key_der(self.private_key)

    @property
    def private_key_pem(self) -> bytes:
        return private_key_as_pem(self.private_key)

    @property
    def public_key_pem(self) -> bytes:
        return der_to_pem(self.public_key_der, "PUBLIC KEY")


def generate_p256_key() -> RpkCredentials:
    """A new ECDSA P-256 key pair, for tests and device provisioning."""
    return RpkCredentials(generate_p256_private_key())


class CertificateUsage(IntEnum):
    """LwM2M Security Object resource 15 (values borrowed from DANE, RFC 6698)."""

    CA_CONSTRAINT = 0
    """The peer's chain must validate up to one of the given CA certificates."""
    SERVICE_CERTIFICATE_CONSTRAINT = 1
    """The peer's end-entity certificate must be the given one AND validate to the trust store."""
    TRUST_ANCHOR_ASSERTION = 2
    """The given certificate is the trust anchor: the peer's chain must end at it."""
    DOMAIN_ISSUED_CERTIFICATE = 3
    """The peer's end-entity certificate must be the given one; no chain validation."""


@dataclass(frozen=True, slots=True)
class X509Credentials:
    """LwM2M Security mode 2: our chain and key, and how to judge the peer's certificate.

    ``trust_anchors_pem`` holds "the given certificate(s)" of the usage (resource 4 "Server
    Public Key" on a client); ``trust_store_pem`` is the trust store that usage 1 validates
    against (``None`` means the system store). A client that does not authenticate with a
    certificate leaves ``cert_chain_pem``/``private_key_pem`` empty.
    """

    cert_chain_pem: bytes
    private_key_pem: bytes = field(repr=False)
    trust_anchors_pem: bytes = b""
    usage: CertificateUsage = CertificateUsage.DOMAIN_ISSUED_CERTIFICATE
    trust_store_pem: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "usage", CertificateUsage(self.usage))
        if bool(self.cert_chain_pem) != bool(self.private_key_pem):
            raise ConfigurationError("give both a certificate chain and its private key, or none")
        if self.cert_chain_pem:
            certificates_der(self.cert_chain_pem)
            private_key_der(self.private_key_pem)
        if self.trust_anchors_pem:
            certificates_der(self.trust_anchors_pem)
        if self.trust_store_pem:
            certificates_der(self.trust_store_pem)

    @property
    def given_certificates_der(self) -> list[bytes]:
        return certificates_der(self.trust_anchors_pem) if self.trust_anchors_pem else []


Credentials = PskCredentials | RpkCredentials | X509Credentials


class IdentityKind(StrEnum):
    PSK = "psk"
    RPK = "rpk"
    X509 = "x509"


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who the peer proved to be during the handshake."""

    kind: IdentityKind
    psk_identity: bytes | None = None
    rpk_spki_der: bytes | None = None
    x509_subject_cn: str | None = None
    x509_san: tuple[str, ...] = ()
    x509_der: bytes | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The principal registrations are bound to (``aiolwm2m.principals``):
        ``psk:<identity, escaped one-to-one>``, ``rpk:<sha256 of the SPKI, hex>`` or
        ``x509:<certificate CN, else first SAN>``."""
        if self.kind is IdentityKind.PSK:
            return psk_principal(self.psk_identity or b"")
        if self.kind is IdentityKind.RPK:
            return rpk_principal(self.rpk_spki_der or b"")
        return x509_principal(self.x509_subject_cn or (self.x509_san[0] if self.x509_san
                                                       else ""))

    @property
    def name(self) -> str:
        """A printable name: PSK identity (escaped as in its principal), certificate CN, or
        ``rpk:<sha256 of SPKI>``."""
        if self.kind is IdentityKind.PSK and self.psk_identity is not None:
            return escape_identity(self.psk_identity)
        if self.kind is IdentityKind.X509:
            return self.x509_subject_cn or (self.x509_san[0] if self.x509_san else "x509:?")
        return "rpk:" + hashlib.sha256(self.rpk_spki_der or b"").hexdigest()[:16]
