"""The Security object (0) as the transports need it: which scheme, which credentials.

Sans-IO. A Security instance tells how to reach one server, bootstrap or LwM2M:

====  =====================  ===========================================================
 id   resource               used as
====  =====================  ===========================================================
 0    LwM2M Server URI       ``coap://``, ``coaps://``, ``coap+tcp://``, ``coaps+tcp://``
 2    Security Mode          0 PSK, 1 RPK, 2 Certificate, 3 NoSec (4, EST, is refused)
 3    Public Key or Identity PSK identity / our SubjectPublicKeyInfo (DER) / our
                             certificate (DER; several concatenated DER certificates are
                             read as a chain, leaf first)
 4    Server Public Key      the server's SubjectPublicKeyInfo (RPK) / the certificate the
                             Certificate Usage names (DER, one or several concatenated)
 5    Secret Key             PSK key / our private key (DER: SEC1 or PKCS#8)
 14   SNI                    TLS server name; the URI's host when absent
 15   Certificate Usage      0-3 as in RFC 6698; 3 (domain-issued certificate) when absent
====  =====================  ===========================================================

:func:`server_target` turns an instance into a :class:`ServerTarget` (or says precisely why
it cannot); :func:`security_values` goes the other way, from the :class:`AccountSecurity`
an application configures for its first account to resource values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.uri import CoapUri, UriError, parse_uri
from aiolwm2m.security.credentials import (
    CertificateUsage,
    Credentials,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
)
from aiolwm2m.security.errors import SecurityError
from aiolwm2m.security.keys import normalize_spki
from aiolwm2m.security.pem import certificates_der, der_to_pem, is_pem, private_key_der

if TYPE_CHECKING:
    from .instance import Instance

PSK, RPK, CERTIFICATE, NO_SEC, EST = 0, 1, 2, 3, 4
MODE_NAMES = {PSK: "PSK", RPK: "RPK", CERTIFICATE: "Certificate", NO_SEC: "NoSec",
              EST: "Certificate with EST"}
#: The binding letter of each scheme (LwM2M 1.1: U for UDP, T for TCP; H for HTTP/2, the
#: letter LwM2M 1.2 gives its HTTP binding, see aiolwm2m.http2).
BINDING_LETTERS = {"coap": "U", "coaps": "U", "coap+tcp": "T", "coaps+tcp": "T",
                   "http2": "H", "https": "H"}
#: NoSec schemes that still take a PSK: over h2c it becomes a bearer token (trusted
#: networks only; see aiolwm2m.http2.server_binding).
BEARER_SCHEMES = frozenset({"http2"})


class SecurityModeError(ValueError):
    """A Security instance the client cannot use; the message names the resource."""


@dataclass(frozen=True, slots=True)
class AccountSecurity:
    """The credentials of an account the application provisions itself: the bootstrap
    account (normal path) or, for development, an LwM2M server account.

    ``credentials`` is one of the security engine's credential types; ``server_public_key``
    is the server's raw public key (RPK mode, DER or PEM). For certificates the trust anchor
    (or expected server certificate) and the usage travel inside :class:`X509Credentials`.
    """

    credentials: Credentials
    server_public_key: bytes | None = None
    sni: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.credentials, RpkCredentials) and not self.server_public_key:
            raise ValueError("RPK mode needs the server's public key (server_public_key)")
        if isinstance(self.credentials, X509Credentials) and not (
                self.credentials.cert_chain_pem and self.credentials.trust_anchors_pem):
            raise ValueError("certificate mode needs our certificate and key, and the "
                             "server certificate or trust anchor (trust_anchors_pem)")

    @property
    def mode(self) -> int:
        if isinstance(self.credentials, PskCredentials):
            return PSK
        return RPK if isinstance(self.credentials, RpkCredentials) else CERTIFICATE


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """Where one server is and how to authenticate to it; equal targets can share a
    connection, a changed target needs a new one."""

    uri: CoapUri
    credentials: Credentials | None = None
    server_public_key: bytes | None = None
    server_name: str | None = None

    @property
    def scheme(self) -> str:
        return self.uri.scheme

    @property
    def binding(self) -> str:
        """The binding letter of the transport (U, T or H)."""
        return BINDING_LETTERS[self.uri.scheme]

    def __str__(self) -> str:
        mode = "NoSec" if self.credentials is None else type(self.credentials).__name__
        return f"{self.uri} ({mode})"


# -- DER and PEM ----------------------------------------------------------------------------


def split_der(data: bytes) -> list[bytes]:
    """Concatenated DER objects (each a SEQUENCE) as a list; raises ValueError when the
    data is not exactly such a sequence."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        if data[i] != 0x30 or i + 2 > len(data):
            raise ValueError(f"no DER SEQUENCE at offset {i}")
        first = data[i + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            n = first & 0x7F
            if not 1 <= n <= 4 or i + 2 + n > len(data):
                raise ValueError(f"bad DER length at offset {i}")
            header, length = 2 + n, int.from_bytes(data[i + 2:i + 2 + n], "big")
        end = i + header + length
        if end > len(data):
            raise ValueError(f"DER object at offset {i} runs past the end")
        out.append(data[i:end])
        i = end
    if not out:
        raise ValueError("empty")
    return out


def certificates_pem(data: bytes) -> bytes:
    """PEM for certificate data given as PEM or as one or several concatenated DER
    certificates."""
    if is_pem(data):
        return data
    return b"".join(der_to_pem(der, "CERTIFICATE") for der in split_der(data))


def certificates_concatenated_der(pem_or_der: bytes) -> bytes:
    return b"".join(certificates_der(pem_or_der)) if is_pem(pem_or_der) else pem_or_der


# -- instance -> target ---------------------------------------------------------------------


def _opaque(inst: Instance, rid: int) -> bytes:
    value = inst.get(rid)
    if value is None:
        return b""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def server_target(inst: Instance) -> ServerTarget:
    """The target a Security instance describes; raises :class:`SecurityModeError` (a
    ValueError, as is :class:`UriError`) saying which resource is unusable and why."""
    where = f"/0/{inst.iid}"
    try:
        uri = parse_uri(str(inst.get(0) or ""))
    except UriError as e:
        raise SecurityModeError(f"{where}/0: {e}") from None
    raw_mode = inst.get(2)
    mode = NO_SEC if raw_mode is None else int(raw_mode)
    if mode == EST:
        raise SecurityModeError(f"{where}/2: security mode 4 (Certificate with EST) is not "
                                "supported: provision the certificate itself (mode 2)")
    if mode not in MODE_NAMES:
        raise SecurityModeError(f"{where}/2: {mode} is not a security mode")
    name = MODE_NAMES[mode]
    if uri.secure and mode == NO_SEC:
        raise SecurityModeError(f"{where}: {uri.scheme}:// needs security mode PSK, RPK or "
                                "Certificate, not NoSec")
    if not uri.secure and mode != NO_SEC and not (
            mode == PSK and uri.scheme in BEARER_SCHEMES):
        raise SecurityModeError(f"{where}: security mode {name} needs a coaps:// or "
                                f"coaps+tcp:// URI, not {uri.scheme}://")
    if mode == NO_SEC:
        return ServerTarget(uri)
    matching = inst.get(13)
    if matching not in (None, 0):
        raise SecurityModeError(f"{where}/13: matching type {matching} is not supported "
                                "(only 0, exact match)")
    sni = inst.get(14)
    server_name = str(sni) if sni else uri.host
    identity, server_key, secret = _opaque(inst, 3), _opaque(inst, 4), _opaque(inst, 5)
    try:
        if mode == PSK:
            return ServerTarget(uri, PskCredentials(identity, secret), None, server_name)
        if not server_key:
            what = "public key" if mode == RPK else "certificate or trust anchor"
            raise SecurityModeError(f"{where}/4: {name} mode needs the server's {what}")
        if not secret:
            raise SecurityModeError(f"{where}/5: {name} mode needs our private key")
        if mode == RPK:
            return ServerTarget(uri, RpkCredentials(secret, identity), normalize_spki(server_key),
                                server_name)
        if not identity:
            raise SecurityModeError(f"{where}/3: Certificate mode needs our certificate")
        raw_usage = inst.get(15)
        usage = CertificateUsage(CertificateUsage.DOMAIN_ISSUED_CERTIFICATE
                                 if raw_usage is None else int(raw_usage))
        return ServerTarget(uri, X509Credentials(certificates_pem(identity), secret,
                                                 certificates_pem(server_key), usage),
                            None, server_name)
    except SecurityError as e:
        raise SecurityModeError(f"{where}: {name} credentials: {e.reason}") from None
    except ValueError as e:
        if isinstance(e, SecurityModeError):
            raise
        raise SecurityModeError(f"{where}: {name} credentials: {e}") from None


# -- account -> instance values ------------------------------------------------------------


def security_values(account: AccountSecurity | None) -> dict[str, Any]:
    """Keyword arguments for :class:`~.objects.SecurityInstance` carrying ``account``
    (NoSec when None)."""
    if account is None:
        return {"security_mode": NO_SEC}
    creds = account.credentials
    values: dict[str, Any] = {"security_mode": account.mode}
    if isinstance(creds, PskCredentials):
        values.update(public_key_or_identity=creds.identity, secret_key=creds.key)
    elif isinstance(creds, RpkCredentials):
        assert account.server_public_key is not None
        values.update(public_key_or_identity=creds.public_key_der,
                      server_public_key=normalize_spki(account.server_public_key),
                      secret_key=creds.private_key_der)
    else:
        values.update(public_key_or_identity=certificates_concatenated_der(creds.cert_chain_pem),
                      server_public_key=certificates_concatenated_der(creds.trust_anchors_pem),
                      secret_key=private_key_der(creds.private_key_pem),
                      certificate_usage=int(creds.usage))
    if account.sni:
        values["sni"] = account.sni
    return values
