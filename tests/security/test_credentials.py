"""Credential values, PEM/DER handling and the certificate-usage verifier."""

from __future__ import annotations

import hashlib
import random

import pytest

from aiolwm2m.security import (
    CertificateRejected,
    CertificateUsage,
    ConfigurationError,
    IdentityKind,
    PeerIdentity,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
    generate_p256_key,
)
from aiolwm2m.security.keys import normalize_spki
from aiolwm2m.security.pem import (
    certificates_der,
    der_to_pem,
    pem_blocks,
    private_key_der,
    private_key_pem_label,
)
from aiolwm2m.security.x509 import CertificateVerifier, x509_identity

from .pki import Pki


def test_psk_credentials_validate_and_hide_the_key() -> None:
    creds = PskCredentials(b"id", b"k3y")
    assert "k3y" not in repr(creds)
    with pytest.raises(ConfigurationError):
        PskCredentials(b"", b"key")
    with pytest.raises(ConfigurationError):
        PskCredentials(b"id", b"")


def test_generated_p256_key_round_trips_through_pem() -> None:
    creds = generate_p256_key()
    assert creds.public_key_der.startswith(b"\x30\x59\x30\x13")  # P-256 SPKI header
    again = RpkCredentials(creds.private_key_pem, normalize_spki(creds.public_key_pem))
    assert again.public_key_der == creds.public_key_der
    assert private_key_pem_label(creds.private_key) == "EC PRIVATE KEY"
    assert generate_p256_key().public_key_der != creds.public_key_der


def test_rpk_accepts_openssl_sec1_and_pkcs8_keys(pki: Pki) -> None:
    sec1 = RpkCredentials(pki.read("rpk_client.key"))
    assert sec1.public_key_der == normalize_spki(pki.read("rpk_client.pub"))
    pkcs8_der = private_key_der(sec1.private_key_pem)
    assert RpkCredentials(pkcs8_der).public_key_der == sec1.public_key_der


def test_rpk_rejects_a_public_key_of_another_pair(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="does not belong"):
        RpkCredentials(pki.read("rpk_client.key"), normalize_spki(pki.read("rpk_other.pub")))


def test_pem_helpers(pki: Pki) -> None:
    chain = pki.read("server_chain.pem")
    ders = certificates_der(chain)
    assert len(ders) == 2
    assert certificates_der(der_to_pem(ders[1], "CERTIFICATE")) == [ders[1]]
    assert certificates_der(ders[0]) == [ders[0]]
    assert [label for label, _ in pem_blocks(chain + pki.read("server.key"))] == \
        ["CERTIFICATE", "CERTIFICATE", "EC PRIVATE KEY"]
    with pytest.raises(ConfigurationError):
        certificates_der(b"not a certificate")
    with pytest.raises(ConfigurationError):
        pem_blocks(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")


def test_x509_credentials_validate_their_inputs(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="both"):
        X509Credentials(pki.read("server.pem"), b"")
    creds = X509Credentials(b"", b"", pki.read("root.pem"), 0)  # type: ignore[arg-type]
    assert creds.usage is CertificateUsage.CA_CONSTRAINT
    assert len(creds.given_certificates_der) == 1


def test_peer_identity_names() -> None:
    assert PeerIdentity(IdentityKind.PSK, psk_identity=b"dev1").name == "dev1"
    spki = b"\x30\x59"
    assert PeerIdentity(IdentityKind.RPK, rpk_spki_der=spki).name == \
        "rpk:" + hashlib.sha256(spki).hexdigest()[:16]
    assert PeerIdentity(IdentityKind.X509, x509_subject_cn="c1").name == "c1"


def _psk_key(identity: bytes) -> str:
    return PeerIdentity(IdentityKind.PSK, psk_identity=identity).key


def test_psk_principals_are_one_to_one() -> None:
    # The byte ff and the four characters \xff were once both "psk:\xff".
    assert _psk_key(b"\xff") != _psk_key(b"\\xff")
    assert (_psk_key(b"\xff"), _psk_key(b"\\xff")) == ("psk:\\xff", "psk:\\\\xff")
    # UTF-8 text and the same text's bytes spelled as escapes, newline and its escape.
    assert _psk_key("dé".encode()) != _psk_key(b"d\\xc3\\xa9")
    assert _psk_key(b"a\nb") != _psk_key(b"a\\x0ab")
    # The usual identity, printable ASCII, is written as it is (as earlier versions did).
    assert _psk_key(b"device-7 id") == "psk:device-7 id"
    # Printable and one-to-one over many identities, including every byte value.
    rng = random.Random(7)
    samples = {bytes([b]) for b in range(256)} | {b"\\", b"\\\\", b"\\x"} | {
        rng.randbytes(rng.randrange(1, 12)) for _ in range(2000)}
    keys = {_psk_key(s): s for s in samples}
    assert len(keys) == len(samples)
    assert all(k.isprintable() and k.isascii() for k in keys)


def test_psk_identity_name_is_escaped_like_its_principal() -> None:
    assert PeerIdentity(IdentityKind.PSK, psk_identity=b"\xff\n").name == "\\xff\\x0a"
    assert PeerIdentity(IdentityKind.PSK, psk_identity=b"a\\b").name == "a\\\\b"


def test_x509_identity_reads_cn_and_san(pki: Pki) -> None:
    ident = x509_identity(certificates_der(pki.read("server_chain.pem")))
    assert ident.kind is IdentityKind.X509
    assert ident.x509_subject_cn == "localhost"
    assert set(ident.x509_san) == {"localhost", "127.0.0.1"}
    assert ident.x509_der == certificates_der(pki.read("server.pem"))[0]


def _verifier(pki: Pki, given: str, usage: CertificateUsage,
              store: str | None = None) -> CertificateVerifier:
    creds = X509Credentials(b"", b"", pki.read(given), usage,
                            pki.read(store) if store else None)
    return CertificateVerifier(creds)


def _chain(pki: Pki, name: str) -> list[bytes]:
    return certificates_der(pki.read(name))


# (given certificate, usage, trust store, peer chain, hostname, accepted?)
CASES = [
    ("root.pem", 0, None, "server_chain.pem", "localhost", True),
    ("inter.pem", 0, None, "server_chain.pem", "localhost", True),
    ("root.pem", 0, None, "server_chain.pem", "example.com", False),  # name mismatch
    ("root.pem", 0, None, "server.pem", "localhost", False),  # intermediate missing
    ("root.pem", 0, None, "rogue_server_chain.pem", "localhost", False),  # other CA
    ("server.pem", 1, "root.pem", "server_chain.pem", "localhost", True),
    ("server.pem", 1, "root.pem", "server_direct.pem", "localhost", False),  # not that cert
    ("server.pem", 1, "rogue_ca.pem", "server_chain.pem", "localhost", False),  # store
    ("server.pem", 1, None, "server_chain.pem", "localhost", False),  # system store
    ("inter.pem", 2, None, "server_chain.pem", "localhost", True),
    ("selfsigned.pem", 2, None, "selfsigned.pem", "localhost", True),
    ("selfsigned.pem", 2, None, "server_chain.pem", "localhost", False),
    ("server.pem", 3, None, "server_chain.pem", None, True),
    ("server.pem", 3, None, "rogue_server_chain.pem", None, False),
    ("selfsigned.pem", 3, None, "selfsigned.pem", "not-checked.example", True),
]


@pytest.mark.parametrize(("given", "usage", "store", "chain", "host", "ok"), CASES)
def test_certificate_usages(pki: Pki, given: str, usage: int, store: str | None, chain: str,
                            host: str | None, ok: bool) -> None:
    verifier = _verifier(pki, given, CertificateUsage(usage), store)
    try:
        if ok:
            ident = verifier.verify(_chain(pki, chain), hostname=host, peer_is_server=True)
            assert ident.x509_subject_cn == "localhost"
        else:
            with pytest.raises(CertificateRejected):
                verifier.verify(_chain(pki, chain), hostname=host, peer_is_server=True)
    finally:
        verifier.close()


def test_key_purpose_is_checked(pki: Pki) -> None:
    verifier = _verifier(pki, "root.pem", CertificateUsage.CA_CONSTRAINT)
    chain = _chain(pki, "client1_chain.pem")  # extendedKeyUsage = clientAuth only
    assert verifier.verify(chain, hostname=None, peer_is_server=False).x509_subject_cn == "client1"
    with pytest.raises(CertificateRejected):
        verifier.verify(chain, hostname=None, peer_is_server=True)


def test_ca_constraint_requires_a_ca_certificate(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="not a CA"):
        _verifier(pki, "server.pem", CertificateUsage.CA_CONSTRAINT)
    with pytest.raises(ConfigurationError, match="trust_anchors_pem"):
        CertificateVerifier(X509Credentials(b"", b"", b"", CertificateUsage.TRUST_ANCHOR_ASSERTION))
