"""Credentials the Bootstrap-Server hands out, and the ones it checks.

:class:`AccountCredentials` is what one LwM2M server account's Security instance (object 0)
carries in one security mode: resources 2 (mode), 3 (PSK identity / client public key /
client certificate), 4 (server public key / server certificate or trust anchor), 5 (PSK key
/ client private key), 14 (SNI) and 15 (certificate usage), all DER where the TS says so.
Its :meth:`~AccountCredentials.security_info` is the matching entry for the LwM2M server's
security store, so that the server accepts the device once it registers with them. A
Bootstrap-Server given that store (``server_security``) installs it when it stores the
configuration::

    account = AccountCredentials.new_psk("dev-1")           # a fresh 128-bit key
    await bootstrap.set_config("dev-1", EndpointConfig.for_server(
        "coaps://lwm2m.example:5684", 1, security=account))

(:meth:`BootstrapServer.provision` does both steps in one call.)

:class:`BootstrapCredentials` is the other direction: how a client must authenticate to the
Bootstrap-Server itself (a PSK, a raw public key or a certificate name).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from aiolwm2m.security.credentials import (
    CertificateUsage,
    IdentityKind,
    PeerIdentity,
    RpkCredentials,
    generate_p256_key,
)
from aiolwm2m.security.errors import SecurityError
from aiolwm2m.security.keys import normalize_spki
from aiolwm2m.security.pem import certificates_der, is_pem, private_key_der
from aiolwm2m.security.x509 import x509_identity
from aiolwm2m.store.records import SecurityInfo

PSK, RPK, CERTIFICATE, NO_SEC, EST = 0, 1, 2, 3, 4
_MODE_NAMES = {PSK: "PSK", RPK: "RPK", CERTIFICATE: "Certificate", NO_SEC: "NoSec"}
#: Fresh PSKs are this long (128 bits, what TLS_PSK_WITH_AES_128_CCM_8 uses).
PSK_KEY_BYTES = 16


class CredentialsError(ValueError):
    """Credentials that cannot work; the message says what is wrong."""


def _der_certificates(data: bytes, what: str) -> bytes:
    """One or several certificates (PEM, or DER) as concatenated DER, leaf first."""
    try:
        ders = certificates_der(data) if is_pem(data) else [data]
    except SecurityError as e:
        raise CredentialsError(f"{what}: {e.reason}") from None
    if not ders or any(d[:1] != b"\x30" for d in ders):
        raise CredentialsError(f"{what}: not a certificate")
    return b"".join(ders)


def _text_or_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class AccountCredentials:
    """The security mode and key material of one LwM2M server account, as written into
    the client's Security instance. Build it with the class methods."""

    mode: int = NO_SEC
    public_key_or_identity: bytes = b""
    server_public_key: bytes = b""
    secret_key: bytes = field(default=b"", repr=False)
    certificate_usage: int | None = None
    sni: str | None = None

    def __post_init__(self) -> None:
        if self.mode == EST:
            raise CredentialsError("security mode 4 (Certificate with EST) carries no "
                                   "credentials to provision; use mode 2 (Certificate)")
        if self.mode not in _MODE_NAMES:
            raise CredentialsError(f"{self.mode} is not a security mode (0 PSK, 1 RPK, "
                                   "2 Certificate, 3 NoSec)")
        if self.mode != NO_SEC and not (self.public_key_or_identity and self.secret_key):
            raise CredentialsError(f"{_MODE_NAMES[self.mode]} needs resource 3 (identity, "
                                   "public key or certificate) and 5 (secret or private key)")
        if self.mode in (RPK, CERTIFICATE) and not self.server_public_key:
            raise CredentialsError(f"{_MODE_NAMES[self.mode]} needs resource 4 (the "
                                   "server's public key, certificate or trust anchor)")
        if self.certificate_usage is not None:
            CertificateUsage(self.certificate_usage)

    @property
    def mode_name(self) -> str:
        return _MODE_NAMES[self.mode]

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def psk(cls, identity: bytes | str, key: bytes) -> AccountCredentials:
        return cls(PSK, _text_or_bytes(identity), b"", key)

    @classmethod
    def new_psk(cls, identity: bytes | str, key_bytes: int = PSK_KEY_BYTES
                ) -> AccountCredentials:
        """A fresh random PSK for ``identity`` (the endpoint name is a good choice)."""
        return cls.psk(identity, secrets.token_bytes(key_bytes))

    @classmethod
    def rpk(cls, private_key: bytes | RpkCredentials, server_public_key: bytes
            ) -> AccountCredentials:
        """RPK mode: the client's key pair (a private key, PEM or DER, or RpkCredentials)
        and the server's public key (SubjectPublicKeyInfo, PEM or DER)."""
        try:
            pair = private_key if isinstance(private_key, RpkCredentials) else RpkCredentials(
                private_key)
            server_spki = normalize_spki(server_public_key)
        except SecurityError as e:
            raise CredentialsError(f"RPK: {e.reason}") from None
        return cls(RPK, pair.public_key_der, server_spki, pair.private_key_der)

    @classmethod
    def new_rpk(cls, server_public_key: bytes) -> AccountCredentials:
        """A fresh ECDSA P-256 key pair for the client, pinning ``server_public_key``."""
        return cls.rpk(generate_p256_key(), server_public_key)

    @classmethod
    def x509(cls, certificate: bytes, private_key: bytes, server_certificate: bytes,
             usage: int = CertificateUsage.DOMAIN_ISSUED_CERTIFICATE,
             sni: str | None = None) -> AccountCredentials:
        """Certificate mode: the client's certificate (PEM or DER; a chain is written as
        concatenated DER, leaf first) and private key, and the certificate the usage names
        for the server: its own certificate (usages 1, 3) or a CA / trust anchor (0, 2)."""
        try:
            key = private_key_der(private_key)
        except SecurityError as e:
            raise CredentialsError(f"certificate mode: {e.reason}") from None
        return cls(CERTIFICATE, _der_certificates(certificate, "client certificate"),
                   _der_certificates(server_certificate, "server certificate"), key,
                   int(CertificateUsage(usage)), sni)

    @classmethod
    def from_security_info(cls, info: SecurityInfo, *, private_key: bytes | None = None,
                           certificate: bytes | None = None,
                           server_public_key: bytes | None = None,
                           server_certificate: bytes | None = None,
                           usage: int = CertificateUsage.DOMAIN_ISSUED_CERTIFICATE,
                           sni: str | None = None) -> AccountCredentials:
        """The account for credentials already in the LwM2M server's security store. A
        PSK entry is complete; the store keeps only public parts of the others, so RPK
        needs the client's ``private_key`` and the ``server_public_key``, X.509 the
        client's ``certificate`` and ``private_key`` and the ``server_certificate``."""
        if info.psk_identity is not None:
            assert info.psk_key is not None
            return cls.psk(info.psk_identity, info.psk_key)
        if info.rpk_public_key is not None:
            if private_key is None or server_public_key is None:
                raise CredentialsError(f"{info.endpoint}: RPK needs the client's private key "
                                       "and the server's public key besides the store entry")
            account = cls.rpk(private_key, server_public_key)
            if normalize_spki(info.rpk_public_key) != account.public_key_or_identity:
                raise CredentialsError(f"{info.endpoint}: the private key does not belong to "
                                       "the public key in the security store")
            return account
        if certificate is None or private_key is None or server_certificate is None:
            raise CredentialsError(f"{info.endpoint}: X.509 needs the client's certificate "
                                   "and private key and the server certificate")
        account = cls.x509(certificate, private_key, server_certificate, usage, sni)
        if account.certificate_name() != info.x509_identity:
            raise CredentialsError(f"{info.endpoint}: the certificate names "
                                   f"{account.certificate_name()!r}, the security store "
                                   f"{info.x509_identity!r}")
        return account

    # -- the server's side ------------------------------------------------------------------

    def certificate_name(self) -> str:
        """The name the LwM2M server binds a certificate to (CN, else the first SAN)."""
        first = _first_der(self.public_key_or_identity)
        try:
            identity = x509_identity([first])
        except SecurityError as e:
            raise CredentialsError(f"client certificate: {e.reason}") from None
        name = identity.x509_subject_cn or (identity.x509_san[0] if identity.x509_san
                                            else "")
        if not name:
            raise CredentialsError("the client certificate has neither CN nor SAN")
        return name

    def security_info(self, endpoint: str) -> SecurityInfo:
        """What the LwM2M server's security store must hold for ``endpoint`` to register
        with these credentials."""
        if self.mode == PSK:
            return SecurityInfo(endpoint, psk_identity=self.public_key_or_identity,
                                psk_key=self.secret_key)
        if self.mode == RPK:
            return SecurityInfo(endpoint, rpk_public_key=self.public_key_or_identity)
        if self.mode == CERTIFICATE:
            return SecurityInfo(endpoint, x509_identity=self.certificate_name())
        raise CredentialsError("a NoSec account has no credentials for the security store")

    def resource_values(self) -> dict[str, Any]:
        """The fields of :class:`~.configuration.SecurityConfig` carrying these credentials."""
        return {"security_mode": self.mode,
                "public_key_or_identity": self.public_key_or_identity,
                "server_public_key": self.server_public_key, "secret_key": self.secret_key,
                "certificate_usage": self.certificate_usage, "sni": self.sni}


def _first_der(data: bytes) -> bytes:
    if len(data) < 4 or data[0] != 0x30:
        raise CredentialsError("resource 3 is not a DER certificate")
    first = data[1]
    if first < 0x80:
        return data[:2 + first]
    n = first & 0x7F
    return data[:2 + n + int.from_bytes(data[2:2 + n], "big")]


# -- authenticating bootstrapping clients ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class BootstrapCredentials:
    """How one client authenticates to the Bootstrap-Server (exactly one of a PSK, a raw
    public key or a certificate name), the server side of its bootstrap account."""

    psk_identity: bytes | None = None
    psk_key: bytes | None = field(default=None, repr=False)
    rpk_public_key: bytes | None = None
    x509_identity: str | None = None

    def __post_init__(self) -> None:
        given = [name for name, value in (("psk_identity", self.psk_identity),
                                          ("rpk_public_key", self.rpk_public_key),
                                          ("x509_identity", self.x509_identity))
                 if value is not None]
        if len(given) != 1:
            raise CredentialsError("bootstrap credentials are one of psk_identity (with "
                                   "psk_key), rpk_public_key or x509_identity, got "
                                   f"{', '.join(given) or 'none'}")
        if self.psk_identity is not None and not self.psk_key:
            raise CredentialsError("a bootstrap PSK identity needs its psk_key")
        if self.psk_identity is None and self.psk_key is not None:
            raise CredentialsError("psk_key without psk_identity")
        if self.rpk_public_key is not None:
            try:
                object.__setattr__(self, "rpk_public_key", normalize_spki(self.rpk_public_key))
            except SecurityError as e:
                raise CredentialsError(f"rpk_public_key: {e.reason}") from None

    @classmethod
    def psk(cls, identity: bytes | str, key: bytes) -> BootstrapCredentials:
        return cls(psk_identity=_text_or_bytes(identity), psk_key=key)

    @classmethod
    def rpk(cls, public_key: bytes) -> BootstrapCredentials:
        return cls(rpk_public_key=public_key)

    @classmethod
    def x509(cls, name: str) -> BootstrapCredentials:
        return cls(x509_identity=name)

    @classmethod
    def from_security_info(cls, info: SecurityInfo) -> BootstrapCredentials:
        return cls(info.psk_identity, info.psk_key, info.rpk_public_key, info.x509_identity)

    @property
    def identity(self) -> str:
        """The identity a transport reports for a peer holding these credentials
        (``PeerIdentity.key``: ``psk:<id>``, ``rpk:<sha256 of SPKI>``, ``x509:<name>``),
        computed by ``PeerIdentity`` itself so the two can never disagree."""
        if self.psk_identity is not None:
            return PeerIdentity(IdentityKind.PSK, psk_identity=self.psk_identity).key
        if self.rpk_public_key is not None:
            return PeerIdentity(IdentityKind.RPK, rpk_spki_der=self.rpk_public_key).key
        return PeerIdentity(IdentityKind.X509, x509_subject_cn=self.x509_identity).key

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.psk_identity is not None:
            d["psk_identity"] = self.psk_identity.hex()
            d["psk_key"] = (self.psk_key or b"").hex()
        if self.rpk_public_key is not None:
            d["rpk_public_key"] = self.rpk_public_key.hex()
        if self.x509_identity is not None:
            d["x509_identity"] = self.x509_identity
        return d
