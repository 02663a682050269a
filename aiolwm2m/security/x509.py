"""X.509 peer verification with the LwM2M certificate usage modes, and identity extraction.

GnuTLS' own session verification knows one trust store and no DANE-style usages, so the
engine installs a verify callback and judges the peer chain here, with trust lists built once
per credentials object (a system trust list holds hundreds of certificates).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from .credentials import CertificateUsage, IdentityKind, PeerIdentity, X509Credentials
from .errors import CertificateRejected, ConfigurationError
from .gnutls_ffi import (
    GNUTLS_CRT_X509,
    GNUTLS_DT_DNS_HOSTNAME,
    GNUTLS_DT_KEY_PURPOSE_OID,
    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE,
    GNUTLS_E_SHORT_MEMORY_BUFFER,
    GNUTLS_KP_TLS_WWW_CLIENT,
    GNUTLS_KP_TLS_WWW_SERVER,
    GNUTLS_OID_X520_COMMON_NAME,
    GNUTLS_SAN_DNSNAME,
    GNUTLS_SAN_IPADDRESS,
    GNUTLS_SAN_URI,
    GNUTLS_TL_NO_DUPLICATES,
    GNUTLS_X509_FMT_DER,
    GNUTLS_X509_FMT_PEM,
    check,
    datum,
    ffi,
    lib,
    take_datum,
)
from .pem import der_to_pem


class _CertList:
    """Parsed ``gnutls_x509_crt_t`` objects for a DER chain, freed by ``close``."""

    def __init__(self, chain_der: list[bytes], error: type[Exception]) -> None:
        g = lib()
        self.array = ffi.new("gnutls_x509_crt_t[]", len(chain_der))
        self.count = 0
        try:
            for der in chain_der:
                check(g.gnutls_x509_crt_init(self.array + self.count), "gnutls_x509_crt_init",
                      error)
                self.count += 1
                d, _buf = datum(der)
                check(g.gnutls_x509_crt_import(self.array[self.count - 1], d,
                                               GNUTLS_X509_FMT_DER),
                      "parsing a peer certificate", error)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        g = lib()
        for i in range(self.count):
            g.gnutls_x509_crt_deinit(self.array[i])
        self.count = 0

    def __enter__(self) -> _CertList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _common_name(crt: Any) -> str | None:
    g = lib()
    size = ffi.new("size_t *", 256)
    buf = ffi.new("char[]", 256)
    rc = g.gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, size)
    if rc == GNUTLS_E_SHORT_MEMORY_BUFFER:
        buf = ffi.new("char[]", size[0])
        rc = g.gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, size)
    if rc < 0:
        return None
    return bytes(ffi.buffer(buf, size[0])).decode("utf-8", "replace")


def _subject_alt_names(crt: Any) -> tuple[str, ...]:
    g = lib()
    names: list[str] = []
    kind = ffi.new("unsigned int *")
    critical = ffi.new("unsigned int *")
    for seq in range(64):
        size = ffi.new("size_t *", 512)
        buf = ffi.new("char[]", 512)
        rc = g.gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, size, kind, critical)
        if rc == GNUTLS_E_SHORT_MEMORY_BUFFER:
            buf = ffi.new("char[]", size[0])
            rc = g.gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, size, kind, critical)
        if rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE:
            break
        if rc < 0:
            continue
        raw = bytes(ffi.buffer(buf, size[0]))
        if rc == GNUTLS_SAN_IPADDRESS and len(raw) in (4, 16):
            names.append(str(ipaddress.ip_address(raw)))
        elif rc in (GNUTLS_SAN_DNSNAME, GNUTLS_SAN_URI):
            names.append(raw.decode("utf-8", "replace"))
    return tuple(names)


def x509_identity(chain_der: list[bytes]) -> PeerIdentity:
    """The identity of a peer from its chain (end-entity first)."""
    with _CertList(chain_der[:1], CertificateRejected) as certs:
        crt = certs.array[0]
        return PeerIdentity(IdentityKind.X509, x509_subject_cn=_common_name(crt),
                            x509_san=_subject_alt_names(crt), x509_der=chain_der[0])


def _status_text(status: int) -> str:
    out = ffi.new("gnutls_datum_t *")
    if lib().gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, out, 0) < 0:
        return f"verification status 0x{status:x}"
    return take_datum(out).decode("utf-8", "replace")


class CertificateVerifier:
    """Judges peer chains for one ``X509Credentials`` object; call ``close`` when done."""

    def __init__(self, creds: X509Credentials) -> None:
        self.usage = creds.usage
        self._given = creds.given_certificates_der
        self._trust: Any = None
        if not self._given:
            raise ConfigurationError(
                f"certificate usage {self.usage.value} needs the given certificate (the CA, "
                "trust anchor or expected peer certificate) in trust_anchors_pem")
        if self.usage is CertificateUsage.CA_CONSTRAINT:
            self._require_ca_certificates()
            self._trust = self._trust_list(b"".join(_pem(der) for der in self._given))
        elif self.usage is CertificateUsage.TRUST_ANCHOR_ASSERTION:
            self._trust = self._trust_list(b"".join(_pem(der) for der in self._given))
        elif self.usage is CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT:
            self._trust = self._trust_list(creds.trust_store_pem)

    def _require_ca_certificates(self) -> None:
        g = lib()
        with _CertList(self._given, ConfigurationError) as certs:
            for i in range(certs.count):
                critical = ffi.new("unsigned int *")
                ca = ffi.new("unsigned int *")
                pathlen = ffi.new("int *")
                rc = g.gnutls_x509_crt_get_basic_constraints(certs.array[i], critical, ca,
                                                             pathlen)
                if rc < 0 or not ca[0]:
                    raise ConfigurationError(
                        "certificate usage 0 (CA constraint) needs CA certificates: "
                        f"{_common_name(certs.array[i])!r} is not a CA")

    @staticmethod
    def _trust_list(pem: bytes | None) -> Any:
        g = lib()
        tl = ffi.new("gnutls_x509_trust_list_t *")
        check(g.gnutls_x509_trust_list_init(tl, 0), "gnutls_x509_trust_list_init",
              ConfigurationError)
        try:
            if pem is None:
                added = g.gnutls_x509_trust_list_add_system_trust(tl[0], 0, 0)
                if added <= 0:
                    raise ConfigurationError("the system trust store is empty or unavailable")
            else:
                d, _buf = datum(pem)
                added = check(g.gnutls_x509_trust_list_add_trust_mem(
                    tl[0], d, ffi.NULL, GNUTLS_X509_FMT_PEM, GNUTLS_TL_NO_DUPLICATES, 0),
                    "loading trusted certificates", ConfigurationError)
                if added <= 0:
                    raise ConfigurationError("no usable certificate in the trust anchors")
        except BaseException:
            g.gnutls_x509_trust_list_deinit(tl[0], 1)
            raise
        return tl[0]

    def close(self) -> None:
        if self._trust is not None:
            lib().gnutls_x509_trust_list_deinit(self._trust, 1)
            self._trust = None

    def __del__(self) -> None:
        self.close()

    def verify(self, chain_der: list[bytes], *, hostname: str | None, peer_is_server: bool
               ) -> PeerIdentity:
        """The peer identity when ``chain_der`` passes this usage, else CertificateRejected."""
        if not chain_der:
            raise CertificateRejected("the peer sent no certificate")
        usage = self.usage
        pinned = usage in (CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT,
                           CertificateUsage.DOMAIN_ISSUED_CERTIFICATE)
        if pinned and chain_der[0] not in self._given:
            raise CertificateRejected(f"certificate usage {usage.value}: the peer's "
                                      "certificate is not the expected one")
        if usage is not CertificateUsage.DOMAIN_ISSUED_CERTIFICATE:
            self._validate_chain(chain_der, hostname, peer_is_server)
        return x509_identity(chain_der)

    def _validate_chain(self, chain_der: list[bytes], hostname: str | None,
                        peer_is_server: bool) -> None:
        g = lib()
        purpose = GNUTLS_KP_TLS_WWW_SERVER if peer_is_server else GNUTLS_KP_TLS_WWW_CLIENT
        checks = ffi.new("gnutls_typed_vdata_st[2]")
        keep = [ffi.new("char[]", purpose)]
        checks[0].type = GNUTLS_DT_KEY_PURPOSE_OID
        checks[0].data = ffi.cast("unsigned char *", keep[0])
        n = 1
        if hostname:
            keep.append(ffi.new("char[]", hostname.encode("idna") if not is_ip_literal(hostname)
                                else hostname.encode()))
            checks[1].type = GNUTLS_DT_DNS_HOSTNAME
            checks[1].data = ffi.cast("unsigned char *", keep[1])
            n = 2
        status = ffi.new("unsigned int *")
        with _CertList(chain_der, CertificateRejected) as certs:
            check(g.gnutls_x509_trust_list_verify_crt2(self._trust, certs.array, certs.count,
                                                       checks, n, 0, status, ffi.NULL),
                  "verifying the peer's certificate chain", CertificateRejected)
        if status[0]:
            raise CertificateRejected(
                f"certificate usage {self.usage.value}: {_status_text(status[0])}")


def _pem(der: bytes) -> bytes:
    return der_to_pem(der, "CERTIFICATE")


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address rather than a name (SNI and name checks differ)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
