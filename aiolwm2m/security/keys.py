"""Key handling through GnuTLS: P-256 generation and SubjectPublicKeyInfo extraction."""

from __future__ import annotations

from .errors import ConfigurationError
from .gnutls_ffi import (
    GNUTLS_ECC_CURVE_SECP256R1,
    GNUTLS_PK_ECDSA,
    GNUTLS_X509_FMT_DER,
    check,
    datum,
    ffi,
    gnutls_curve_to_bits,
    lib,
    take_datum,
)
from .pem import is_pem, private_key_der, public_key_der


def _check(rc: int, what: str) -> None:
    check(rc, what, ConfigurationError)


def generate_p256_private_key() -> bytes:
    """A fresh ECDSA P-256 private key as SEC1 DER (the ``EC PRIVATE KEY`` PEM body)."""
    g = lib()
    key = ffi.new("gnutls_x509_privkey_t *")
    _check(g.gnutls_x509_privkey_init(key), "gnutls_x509_privkey_init")
    try:
        _check(g.gnutls_x509_privkey_generate(
            key[0], GNUTLS_PK_ECDSA, gnutls_curve_to_bits(GNUTLS_ECC_CURVE_SECP256R1), 0),
            "generating a P-256 key")
        out = ffi.new("gnutls_datum_t *")
        _check(g.gnutls_x509_privkey_export2(key[0], GNUTLS_X509_FMT_DER, out), "exporting key")
        return take_datum(out)
    finally:
        g.gnutls_x509_privkey_deinit(key[0])


def spki_from_private_key(private_key: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo that belongs to a PEM or DER private key."""
    g = lib()
    der = private_key_der(private_key)
    key_datum, _keep = datum(der)
    pkey = ffi.new("gnutls_privkey_t *")
    pub = ffi.new("gnutls_pubkey_t *")
    _check(g.gnutls_privkey_init(pkey), "gnutls_privkey_init")
    try:
        _check(g.gnutls_privkey_import_x509_raw(pkey[0], key_datum, GNUTLS_X509_FMT_DER,
                                                ffi.NULL, 0), "reading the private key")
        _check(g.gnutls_pubkey_init(pub), "gnutls_pubkey_init")
        try:
            _check(g.gnutls_pubkey_import_privkey(pub[0], pkey[0], 0, 0), "deriving public key")
            out = ffi.new("gnutls_datum_t *")
            _check(g.gnutls_pubkey_export2(pub[0], GNUTLS_X509_FMT_DER, out), "exporting SPKI")
            return take_datum(out)
        finally:
            g.gnutls_pubkey_deinit(pub[0])
    finally:
        g.gnutls_privkey_deinit(pkey[0])


def normalize_spki(public_key: bytes) -> bytes:
    """A PEM or DER public key, parsed and re-exported as canonical DER SubjectPublicKeyInfo."""
    g = lib()
    if is_pem(public_key):
        der = public_key_der(public_key)
        if der is None:
            raise ConfigurationError("no PUBLIC KEY block in the PEM data")
    else:
        der = public_key
    key_datum, _keep = datum(der)
    pub = ffi.new("gnutls_pubkey_t *")
    _check(g.gnutls_pubkey_init(pub), "gnutls_pubkey_init")
    try:
        _check(g.gnutls_pubkey_import(pub[0], key_datum, GNUTLS_X509_FMT_DER), "reading public key")
        out = ffi.new("gnutls_datum_t *")
        _check(g.gnutls_pubkey_export2(pub[0], GNUTLS_X509_FMT_DER, out), "exporting SPKI")
        return take_datum(out)
    finally:
        g.gnutls_pubkey_deinit(pub[0])
