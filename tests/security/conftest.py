from __future__ import annotations

from pathlib import Path

import pytest

from aiolwm2m.security import (
    CertificateUsage,
    InMemoryCredentialLookup,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
)

from .pki import Pki, make_pki

PSK_IDENTITY = b"dev1"
PSK_KEY = b"secretPSK-0123456789"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="session")
def server_rpk(pki: Pki) -> RpkCredentials:
    return RpkCredentials(pki.read("rpk_server.key"))


@pytest.fixture(scope="session")
def client_rpk(pki: Pki) -> RpkCredentials:
    return RpkCredentials(pki.read("rpk_client.key"))


@pytest.fixture(scope="session")
def other_rpk(pki: Pki) -> RpkCredentials:
    return RpkCredentials(pki.read("rpk_other.key"))


@pytest.fixture
def psk() -> PskCredentials:
    return PskCredentials(PSK_IDENTITY, PSK_KEY)


@pytest.fixture
def lookup(client_rpk: RpkCredentials) -> InMemoryCredentialLookup:
    return InMemoryCredentialLookup(psk={PSK_IDENTITY: PSK_KEY}, rpk=[client_rpk.public_key_der])


@pytest.fixture(scope="session")
def server_x509(pki: Pki) -> X509Credentials:
    """The server's chain (server + intermediate); clients must chain to the root CA."""
    return X509Credentials(pki.read("server_chain.pem"), pki.read("server.key"),
                           pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)


@pytest.fixture(scope="session")
def client1_x509(pki: Pki) -> X509Credentials:
    return X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                           pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
