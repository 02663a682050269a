"""Interoperability with libcoap's GnuTLS and OpenSSL builds, in both directions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    CertificateRejected,
    CertificateUsage,
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    HandshakeCompleted,
    InMemoryCredentialLookup,
    PskCredentials,
    RpkCredentials,
    ServerCredentials,
    SessionClosed,
    UnknownIdentity,
    WrongKey,
    X509Credentials,
)

from .conftest import PSK_IDENTITY, PSK_KEY
from .dtls_harness import DtlsClientHarness, DtlsServerHarness
from .libcoap import coap_client, coap_server, requires_libcoap
from .pki import Pki

pytestmark = [requires_libcoap, pytest.mark.interop]

GNUTLS, OPENSSL = "coap-client-gnutls", "coap-client-openssl"
PSK_ARGS = ["-k", PSK_KEY.decode(), "-u", PSK_IDENTITY.decode()]


@pytest.fixture
async def server(lookup: InMemoryCredentialLookup, server_rpk: RpkCredentials,
                 server_x509: X509Credentials) -> AsyncIterator[DtlsServerHarness]:
    dtls = DtlsServer(ServerCredentials(lookup, rpk=server_rpk, x509=server_x509),
                      DtlsServerConfig(handshake_timeout=1.5))
    async with DtlsServerHarness(dtls) as harness:
        yield harness


def _uri(server: DtlsServerHarness, path: str = "hello") -> str:
    return f"coaps://127.0.0.1:{server.port}/{path}"


async def _good_request(server: DtlsServerHarness) -> None:
    """A well-configured client right after a failure: the server must still serve."""
    result = await coap_client(GNUTLS, ["-B", "5", *PSK_ARGS], _uri(server))
    assert result.stdout.strip() == "world", result


def _args(pki: Pki, kind: str) -> list[str]:
    if kind == "psk":
        return PSK_ARGS
    if kind == "rpk":
        return ["-M", str(pki.path("rpk_client.key"))]
    if kind == "x509-openssl":  # OpenSSL sends only the end-entity certificate
        return ["-c", str(pki.path("client2.pem")), "-j", str(pki.path("client2.key")),
                "-C", str(pki.path("root.pem"))]
    return ["-c", str(pki.path("client1_chain.pem")), "-j", str(pki.path("client1.key")),
            "-C", str(pki.path("root.pem"))]


@pytest.mark.parametrize(("binary", "kind", "identity"), [
    (GNUTLS, "psk", "dev1"),
    (OPENSSL, "psk", "dev1"),
    (GNUTLS, "rpk", None),
    (OPENSSL, "x509-openssl", "client2"),
    (GNUTLS, "x509", "client1"),
])
async def test_libcoap_client_gets_hello(server: DtlsServerHarness, pki: Pki, binary: str,
                                         kind: str, identity: str | None,
                                         client_rpk: RpkCredentials) -> None:
    result = await coap_client(binary, ["-B", "5", *_args(pki, kind)], _uri(server))
    assert result.stdout.strip() == "world", result
    (done,) = server.completed()
    if identity is None:
        assert done.identity.rpk_spki_der == client_rpk.public_key_der
    else:
        assert done.identity.name == identity


async def test_libcoap_put_is_echoed(server: DtlsServerHarness) -> None:
    result = await coap_client(OPENSSL, ["-B", "5", "-m", "put", "-e", "payload-123",
                                         *PSK_ARGS], _uri(server, "echo"))
    assert result.stdout.strip() == "payload-123", result


@pytest.mark.parametrize(("binary", "args", "error"), [
    # Known at the client's Finished, not at the handshake timeout.
    (GNUTLS, ["-k", "wrong-key", "-u", "dev1"], WrongKey),
    (OPENSSL, ["-k", PSK_KEY.decode(), "-u", "nobody"], UnknownIdentity),
    (GNUTLS, ["-M", "{rpk_other.key}"], UnknownIdentity),
    (OPENSSL, ["-c", "{rogue_client.pem}", "-j", "{rogue_client.key}", "-C", "{root.pem}"],
     CertificateRejected),
])
async def test_libcoap_client_rejected_then_server_keeps_serving(
        server: DtlsServerHarness, pki: Pki, binary: str, args: list[str],
        error: type) -> None:
    args = [str(pki.path(a[1:-1])) if a.startswith("{") else a for a in args]
    result = await coap_client(binary, ["-B", "2", *args], _uri(server), timeout=8)
    assert "world" not in result.stdout
    await server.wait_for(lambda s: bool(s.closed()), timeout=5)
    (closed,) = server.closed()
    assert isinstance(closed.error, error) and not closed.established
    assert server.server.handshake_count == 0 and server.server.session_count == 0
    await _good_request(server)


# -- our client against libcoap servers -------------------------------------------------

async def _get_root(port: int, client: DtlsClient) -> bytes:
    async with DtlsClientHarness(client, port) as h:
        done = await h.handshake()
        assert isinstance(done, HandshakeCompleted), done
        resp = await h.request(Message.request(Code.GET, "/"))
        assert resp.code == Code.CONTENT
        return resp.payload


@pytest.mark.parametrize("binary", ["coap-server-gnutls", "coap-server-openssl"])
async def test_our_psk_client_against_libcoap_server(binary: str, psk: PskCredentials) -> None:
    async with coap_server(binary, ["-k", PSK_KEY.decode(), "-h", "hint"]) as port:
        assert b"libcoap" in await _get_root(port, DtlsClient(psk))


async def test_our_rpk_client_against_libcoap_gnutls_server(pki: Pki, client_rpk: RpkCredentials,
                                                            server_rpk: RpkCredentials) -> None:
    async with coap_server("coap-server-gnutls", ["-M", str(pki.path("rpk_server.key"))]) as port:
        client = DtlsClient(client_rpk, server_public_key=server_rpk.public_key_der)
        assert b"libcoap" in await _get_root(port, client)
        async with DtlsClientHarness(
                DtlsClient(client_rpk, server_public_key=client_rpk.public_key_der), port) as h:
            failed = await h.handshake()
            assert isinstance(failed, SessionClosed)
            assert isinstance(failed.error, CertificateRejected)


@pytest.mark.parametrize(("binary", "cert", "key", "mine"), [
    ("coap-server-openssl", "server_direct.pem", "server_direct.key", "client2"),
    ("coap-server-gnutls", "server_chain.pem", "server.key", "client1"),
])
async def test_our_x509_client_against_libcoap_server(pki: Pki, binary: str, cert: str,
                                                      key: str, mine: str) -> None:
    args = ["-c", str(pki.path(cert)), "-j", str(pki.path(key)), "-C", str(pki.path("root.pem"))]
    chain = f"{mine}_chain.pem"
    creds = X509Credentials(pki.read(chain), pki.read(f"{mine}.key"), pki.read("root.pem"),
                            CertificateUsage.CA_CONSTRAINT)
    async with coap_server(binary, args) as port:
        client = DtlsClient(creds, server_name="localhost")
        assert b"libcoap" in await _get_root(port, client)
        # Pinning another certificate (usage 3) must fail against the same server.
        pinned = X509Credentials(pki.read(chain), pki.read(f"{mine}.key"),
                                 pki.read("rogue_server.pem"),
                                 CertificateUsage.DOMAIN_ISSUED_CERTIFICATE)
        async with DtlsClientHarness(DtlsClient(pinned), port) as h:
            failed = await h.handshake()
            assert isinstance(failed, SessionClosed)
            assert isinstance(failed.error, CertificateRejected)


async def test_our_client_with_wrong_psk_fails_against_libcoap() -> None:
    async with coap_server("coap-server-gnutls", ["-k", PSK_KEY.decode()]) as port:
        client = DtlsClient(PskCredentials(PSK_IDENTITY, b"wrong"), handshake_timeout=1.5)
        async with DtlsClientHarness(client, port) as h:
            failed = await h.handshake(timeout=5)
            assert isinstance(failed, SessionClosed) and not failed.established
            assert client.peer_identity is None
