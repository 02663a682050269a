"""TLS over TCP with ALPN "coap": our client and server on loopback, and libcoap over TCP."""

from __future__ import annotations

import time

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    ApplicationData,
    CertificateRejected,
    CertificateUsage,
    Credentials,
    HandshakeCompleted,
    InMemoryCredentialLookup,
    NoApplicationProtocol,
    PskCredentials,
    RpkCredentials,
    ServerCredentials,
    SessionClosed,
    SessionClosedError,
    TlsClientConnection,
    TlsServer,
    TlsServerConfig,
    X509Credentials,
)

from .conftest import PSK_IDENTITY, PSK_KEY
from .libcoap import coap_client, requires_libcoap
from .pki import Pki
from .tcp_harness import TlsCoapClient, TlsCoapListener


@pytest.fixture
def tls_server(lookup: InMemoryCredentialLookup, server_rpk: RpkCredentials,
               server_x509: X509Credentials) -> TlsServer:
    return TlsServer(ServerCredentials(lookup, rpk=server_rpk, x509=server_x509),
                     TlsServerConfig(handshake_timeout=3.0))


def _creds(mode: str, psk: PskCredentials, client_rpk: RpkCredentials,
           client1_x509: X509Credentials) -> Credentials:
    choices: dict[str, Credentials] = {"psk": psk, "rpk": client_rpk, "x509": client1_x509}
    return choices[mode]


@pytest.mark.parametrize("mode", ["psk", "rpk", "x509"])
async def test_coap_over_tls_with_alpn(mode: str, tls_server: TlsServer, psk: PskCredentials,
                                       client_rpk: RpkCredentials, server_rpk: RpkCredentials,
                                       client1_x509: X509Credentials) -> None:
    async with TlsCoapListener(tls_server) as listener:
        conn = TlsClientConnection(_creds(mode, psk, client_rpk, client1_x509),
                                   server_name="localhost",
                                   server_public_key=server_rpk.public_key_der)
        async with TlsCoapClient(conn, listener.port) as client:
            done = await client.handshake()
            assert isinstance(done, HandshakeCompleted), done
            assert done.alpn == "coap" and conn.alpn_protocol == "coap"
            resp = await client.request(Message.request(Code.GET, "/hello"))
            assert (resp.code, resp.payload) == (Code.CONTENT, b"world")
            big = bytes(range(256)) * 200  # 51 KB: several TLS records, several TCP reads
            resp = await client.request(Message.request(Code.PUT, "/echo", payload=big))
            assert resp.payload == big
        await listener.wait_for(lambda s: any(isinstance(e, SessionClosed) for e in s.events))
        (server_done,) = [e for e in listener.events if isinstance(e, HandshakeCompleted)]
        assert server_done.alpn == "coap" and server_done.identity.kind.value == mode
        (closed,) = [e for e in listener.events if isinstance(e, SessionClosed)]
        assert closed.reason == "closed by the peer"


@pytest.mark.parametrize(("required", "offer"), [(True, ()), (False, ("h2",))])
async def test_client_without_coap_alpn_is_refused(lookup: InMemoryCredentialLookup,
                                                   psk: PskCredentials, required: bool,
                                                   offer: tuple[str, ...]) -> None:
    tls_server = TlsServer(ServerCredentials(lookup), TlsServerConfig(alpn_required=required))
    async with TlsCoapListener(tls_server) as listener:
        async with TlsCoapClient(TlsClientConnection(psk, alpn=offer), listener.port) as client:
            if isinstance(await client.handshake(), HandshakeCompleted):
                # TLS 1.3: the client is done before the server sees it sent no ALPN.
                with pytest.raises(ConnectionError):
                    await client.request(Message.request(Code.GET, "/hello"))
            closed_here = next(e for e in client.events if isinstance(e, SessionClosed))
            assert "application protocol" in closed_here.reason
        await listener.wait_for(lambda s: any(isinstance(e, SessionClosed) for e in s.events))
        (closed,) = [e for e in listener.events if isinstance(e, SessionClosed)]
        assert isinstance(closed.error, NoApplicationProtocol)


async def test_alpn_is_optional_by_default(lookup: InMemoryCredentialLookup,
                                           psk: PskCredentials) -> None:
    server = TlsServer(ServerCredentials(lookup))
    async with TlsCoapListener(server) as listener:
        async with TlsCoapClient(TlsClientConnection(psk, alpn=()), listener.port) as client:
            done = await client.handshake()
            assert isinstance(done, HandshakeCompleted) and done.alpn is None
            assert (await client.request(Message.request(Code.GET, "/hello"))).payload == b"world"


async def test_tls_resumption(tls_server: TlsServer, psk: PskCredentials) -> None:
    async with TlsCoapListener(tls_server) as listener:
        first = TlsClientConnection(psk, resumption=True)
        async with TlsCoapClient(first, listener.port) as client:
            await client.handshake()
            await client.request(Message.request(Code.GET, "/hello"))
            ticket = first.session_data  # TLS 1.3: the tickets came after the handshake
        assert ticket
        again = TlsClientConnection(psk, session_data=ticket)
        async with TlsCoapClient(again, listener.port) as client:
            done = await client.handshake()
            assert isinstance(done, HandshakeCompleted) and done.resumed
            assert (await client.request(Message.request(Code.GET, "/hello"))).payload == b"world"


def test_tls_failures_in_memory(lookup: InMemoryCredentialLookup, pki: Pki,
                                server_x509: X509Credentials) -> None:
    server = TlsServer(ServerCredentials(lookup, x509=server_x509))
    now = time.monotonic()

    def run(conn: TlsClientConnection) -> tuple[list[object], list[object]]:
        srv = server.accept("peer", now)
        client_events: list[object] = list(conn.start(now))
        server_events: list[object] = []
        for _ in range(10):
            a = conn.outgoing()
            if a:
                server_events += srv.receive_data(a, now)
            b = srv.outgoing()
            if b:
                client_events += conn.receive_data(b, now)
            if not a and not b:
                break
        return client_events, server_events

    # A wrong PSK is an explicit failure over TLS (no silent drop as in DTLS).
    c, s = run(TlsClientConnection(PskCredentials(PSK_IDENTITY, b"wrong")))
    assert isinstance(s[-1], SessionClosed) and isinstance(c[-1], SessionClosed)
    rogue = X509Credentials(pki.read("rogue_client_chain.pem"), pki.read("rogue_client.key"),
                            pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    c, s = run(TlsClientConnection(rogue, server_name="localhost"))
    assert isinstance(s[-1], SessionClosed) and isinstance(s[-1].error, CertificateRejected)
    # EOF without close_notify is reported as such; data after close is refused.
    conn = TlsClientConnection(PskCredentials(PSK_IDENTITY, PSK_KEY))
    c, s = run(conn)
    assert isinstance(c[0], HandshakeCompleted)
    (eof,) = conn.receive_eof()
    assert isinstance(eof, SessionClosed) and "close_notify" in eof.reason
    with pytest.raises(SessionClosedError):
        conn.send(b"late")
    assert not [e for e in c if isinstance(e, ApplicationData)]


def test_handshake_deadline(lookup: InMemoryCredentialLookup) -> None:
    server = TlsServer(ServerCredentials(lookup), TlsServerConfig(handshake_timeout=2.0))
    now = time.monotonic()
    conn = server.accept("silent-peer", now)
    assert conn.next_deadline() == pytest.approx(now + 2.0)
    assert conn.handle_timeout(now + 1.0) == []
    (closed,) = conn.handle_timeout(now + 2.5)
    assert isinstance(closed, SessionClosed) and "timed out" in closed.reason
    assert conn.next_deadline() is None


@requires_libcoap
@pytest.mark.interop
@pytest.mark.parametrize("binary", ["coap-client-gnutls", "coap-client-openssl"])
async def test_libcoap_over_tls_tcp(binary: str, tls_server: TlsServer) -> None:
    # libcoap 4.3.1 offers no ALPN over TLS, which the default (alpn_required=False) allows.
    async with TlsCoapListener(tls_server) as listener:
        result = await coap_client(binary, ["-B", "5", "-k", PSK_KEY.decode(),
                                            "-u", PSK_IDENTITY.decode()],
                                   f"coaps+tcp://127.0.0.1:{listener.port}/hello")
        assert result.stdout.strip() == "world", result
        (done,) = [e for e in listener.events if isinstance(e, HandshakeCompleted)]
        assert done.alpn is None and done.identity.name == "dev1"


@requires_libcoap
@pytest.mark.interop
@pytest.mark.parametrize("kind", ["rpk", "x509"])
async def test_libcoap_gnutls_rpk_and_x509_over_tls(kind: str, tls_server: TlsServer, pki: Pki,
                                                    client_rpk: RpkCredentials) -> None:
    # The server offers both; libcoap lists X.509 first even in RPK mode, so this checks
    # that the server reads the ClientHello and presents its raw public key.
    args = (["-M", str(pki.path("rpk_client.key"))] if kind == "rpk" else
            ["-c", str(pki.path("client1_chain.pem")), "-j", str(pki.path("client1.key")),
             "-C", str(pki.path("root.pem"))])
    async with TlsCoapListener(tls_server) as listener:
        result = await coap_client("coap-client-gnutls", ["-B", "5", *args],
                                   f"coaps+tcp://127.0.0.1:{listener.port}/hello")
        assert result.stdout.strip() == "world", result
        (done,) = [e for e in listener.events if isinstance(e, HandshakeCompleted)]
        if kind == "rpk":
            assert done.identity.rpk_spki_der == client_rpk.public_key_der
        else:
            assert done.identity.x509_subject_cn == "client1"
