"""DtlsClient against DtlsServer in memory: every security mode, resumption, failures."""

from __future__ import annotations

import time

import pytest

from aiolwm2m.security import (
    ApplicationData,
    CertificateRejected,
    CertificateUsage,
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    Event,
    HandshakeCompleted,
    HandshakeTimeout,
    IdentityKind,
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
from .memory_pair import Wire
from .pki import Pki

A = ("192.0.2.1", 40001)
B = ("192.0.2.2", 40002)


def _of(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def _server(lookup: InMemoryCredentialLookup, *, rpk: RpkCredentials | None = None,
            x509: X509Credentials | None = None, **config: object) -> DtlsServer:
    return DtlsServer(ServerCredentials(lookup, rpk=rpk, x509=x509),
                      DtlsServerConfig(**config))  # type: ignore[arg-type]


def _exchange(wire: Wire, peer: tuple[str, int], now: float) -> None:
    """Application data both ways over an established pair."""
    client = wire.clients[peer]
    client.send(b"ping")
    wire.pump(now)
    assert ApplicationData(peer, b"ping") in wire.server_events
    wire.server.send(peer, b"pong", now)
    wire.pump(now)
    assert ApplicationData(None, b"pong") in wire.client_events[peer]


def test_psk(lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    events = wire.connect(DtlsClient(psk), A, now)
    (client_done,) = _of(events, HandshakeCompleted)
    (server_done,) = _of(wire.server_events, HandshakeCompleted)
    assert server_done.identity.kind is IdentityKind.PSK
    assert server_done.identity.psk_identity == PSK_IDENTITY
    assert server_done.cipher_suite == "TLS_PSK_WITH_AES_128_CCM_8"
    assert client_done.cipher_suite == "TLS_PSK_WITH_AES_128_CCM_8"
    assert server.peer_identity(A) == server_done.identity
    assert server.stats.hello_verify_requests == 1
    _exchange(wire, A, now)
    server.close()


def test_rpk(lookup: InMemoryCredentialLookup, client_rpk: RpkCredentials,
             server_rpk: RpkCredentials) -> None:
    server, now = _server(lookup, rpk=server_rpk), time.monotonic()
    wire = Wire(server)
    events = wire.connect(DtlsClient(client_rpk, server_public_key=server_rpk.public_key_pem),
                          A, now)
    (client_done,) = _of(events, HandshakeCompleted)
    assert client_done.identity.rpk_spki_der == server_rpk.public_key_der
    (server_done,) = _of(wire.server_events, HandshakeCompleted)
    assert server_done.identity.kind is IdentityKind.RPK
    assert server_done.identity.rpk_spki_der == client_rpk.public_key_der
    assert server_done.cipher_suite == "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"
    _exchange(wire, A, now)


# The client's view of the server certificate, one case per certificate usage.
CLIENT_USAGES = [
    ("root.pem", CertificateUsage.CA_CONSTRAINT, None),
    ("server.pem", CertificateUsage.SERVICE_CERTIFICATE_CONSTRAINT, "root.pem"),
    ("inter.pem", CertificateUsage.TRUST_ANCHOR_ASSERTION, None),
    ("server.pem", CertificateUsage.DOMAIN_ISSUED_CERTIFICATE, None),
]


@pytest.mark.parametrize(("given", "usage", "store"), CLIENT_USAGES)
def test_x509_each_certificate_usage(pki: Pki, lookup: InMemoryCredentialLookup,
                                     server_x509: X509Credentials, given: str,
                                     usage: CertificateUsage, store: str | None) -> None:
    server, now = _server(lookup, x509=server_x509), time.monotonic()
    wire = Wire(server)
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read(given), usage, pki.read(store) if store else None)
    events = wire.connect(DtlsClient(creds, server_name="localhost"), A, now)
    (client_done,) = _of(events, HandshakeCompleted)
    assert client_done.identity.x509_subject_cn == "localhost"
    (server_done,) = _of(wire.server_events, HandshakeCompleted)
    assert server_done.identity.kind is IdentityKind.X509
    assert server_done.identity.x509_subject_cn == "client1"
    _exchange(wire, A, now)


@pytest.mark.parametrize(("given", "usage", "store"), CLIENT_USAGES)
def test_x509_each_usage_rejects_the_wrong_server(pki: Pki, lookup: InMemoryCredentialLookup,
                                                   given: str, usage: CertificateUsage,
                                                   store: str | None) -> None:
    rogue = X509Credentials(pki.read("rogue_server_chain.pem"), pki.read("rogue_server.key"),
                            pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    server, now = _server(lookup, x509=rogue), time.monotonic()
    wire = Wire(server)
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read(given), usage, pki.read(store) if store else None)
    events = wire.connect(DtlsClient(creds, server_name="localhost"), A, now)
    (closed,) = _of(events, SessionClosed)
    assert isinstance(closed.error, CertificateRejected)
    assert not closed.established
    assert server.session_count == 0


def test_server_side_usage_and_authorisation(pki: Pki, psk: PskCredentials) -> None:
    # The server pins client1's certificate (usage 3) and the lookup allows only "client1".
    pinned = X509Credentials(pki.read("server_chain.pem"), pki.read("server.key"),
                             pki.read("client1.pem"), CertificateUsage.DOMAIN_ISSUED_CERTIFICATE)
    lookup = InMemoryCredentialLookup(x509_names=["client1"])
    server, now = _server(lookup, x509=pinned), time.monotonic()
    wire = Wire(server)

    def client(name: str) -> DtlsClient:
        chain = "client2_chain.pem" if name == "client2" else f"{name}_chain.pem"
        return DtlsClient(X509Credentials(pki.read(chain), pki.read(f"{name}.key"),
                                          pki.read("server.pem"),
                                          CertificateUsage.DOMAIN_ISSUED_CERTIFICATE))

    assert _of(wire.connect(client("client1"), A, now), HandshakeCompleted)
    assert _of(wire.connect(client("client2"), B, now), SessionClosed)
    failure = _of(wire.server_events, SessionClosed)[0]
    assert isinstance(failure.error, CertificateRejected)
    # Same certificate usage passes, but the store says no.
    lookup.x509_names = {"someone-else"}
    wire.connect(client("client1"), ("192.0.2.9", 1), now)
    assert isinstance(_of(wire.server_events, SessionClosed)[-1].error, UnknownIdentity)


def test_rpk_failures(lookup: InMemoryCredentialLookup, client_rpk: RpkCredentials,
                      server_rpk: RpkCredentials, other_rpk: RpkCredentials) -> None:
    server, now = _server(lookup, rpk=server_rpk), time.monotonic()
    wire = Wire(server)
    # The client expects another server key.
    events = wire.connect(DtlsClient(client_rpk, server_public_key=other_rpk.public_key_der),
                          A, now)
    assert isinstance(_of(events, SessionClosed)[0].error, CertificateRejected)
    # The server does not know the client's key.
    wire.connect(DtlsClient(other_rpk, server_public_key=server_rpk.public_key_der), B, now)
    assert isinstance(_of(wire.server_events, SessionClosed)[-1].error, UnknownIdentity)
    assert server.session_count == 0 and server.handshake_count == 0


def test_unknown_psk_identity_fails_fast(lookup: InMemoryCredentialLookup) -> None:
    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    events = wire.connect(DtlsClient(PskCredentials(b"nobody", PSK_KEY)), A, now)
    (closed,) = _of(events, SessionClosed)
    assert "PSK" in closed.reason or "username" in closed.reason
    (server_closed,) = _of(wire.server_events, SessionClosed)
    assert isinstance(server_closed.error, UnknownIdentity)
    assert server.handshake_count == 0


def test_wrong_psk_fails_at_the_finished_and_server_keeps_serving(
        lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server, now = _server(lookup, handshake_timeout=5.0), time.monotonic()
    wire = Wire(server)
    bad = DtlsClient(PskCredentials(PSK_IDENTITY, b"wrong key"), handshake_timeout=5.0)
    events = wire.connect(bad, A, now)
    # DTLS drops the Finished that does not decrypt; the server notices the drop right
    # after the key exchange and ends the handshake at once instead of at its timeout.
    (server_closed,) = _of(wire.server_events, SessionClosed)
    assert server_closed.peer == A and isinstance(server_closed.error, WrongKey)
    assert "dev1" in server_closed.reason and "wrong key" in server_closed.reason
    assert server_closed.offered is not None and server_closed.offered.psk_identity == b"dev1"
    assert server.handshake_count == 0 and server.stats.handshakes_failed == 1
    # ...and tells the client (decrypt_error), which gives up too.
    (client_closed,) = _of(events, SessionClosed)
    assert not client_closed.established and "alert" in client_closed.reason.lower()
    # A good client gets through.
    assert _of(wire.connect(DtlsClient(psk), B, now), HandshakeCompleted)
    assert server.peers() == [B]


def test_a_stalled_handshake_times_out(lookup: InMemoryCredentialLookup,
                                       psk: PskCredentials) -> None:
    server, now = _server(lookup, handshake_timeout=5.0), time.monotonic()
    client = DtlsClient(psk)
    client.start(now)
    (hello,) = client.outgoing()
    server.receive_datagram(hello, A, now)
    ((hvr, _),) = server.outgoing()
    client.receive_datagram(hvr, now)
    for d in client.outgoing():  # the ClientHello with its cookie; then the client stalls
        server.receive_datagram(d, A, now)
    assert server.handshake_count == 1
    (closed,) = _of(server.handle_timeout(now + 6.0), SessionClosed)
    assert closed.peer == A and isinstance(closed.error, HandshakeTimeout)
    assert closed.offered is None and server.handshake_count == 0


def test_a_garbled_handshake_record_before_the_key_exchange_is_no_wrong_key(
        lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    """Only a record dropped once the PSK identity is known reads as a wrong key."""
    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    client = DtlsClient(psk)
    wire.attach(client, A)
    client.start(now)
    (hello,) = client.outgoing()
    server.receive_datagram(hello, A, now)
    ((hvr, _),) = server.outgoing()
    client.receive_datagram(hvr, now)
    for d in client.outgoing():
        server.receive_datagram(d, A, now)  # the ClientHello with its cookie
    # An epoch-1 handshake record, as a stray or reordered Finished would be.
    stray = b"\x16\xfe\xfd\x00\x01" + bytes(6) + (40).to_bytes(2, "big") + bytes(40)
    assert server.receive_datagram(stray, A, now) == []
    assert server.handshake_count == 1
    for d, _ in server.outgoing():
        client.receive_datagram(d, now)
    wire.pump(now)
    assert [e.peer for e in wire.server_events if isinstance(e, HandshakeCompleted)] == [A]


def test_retransmission_recovers_a_lost_flight(lookup: InMemoryCredentialLookup,
                                               psk: PskCredentials) -> None:
    server = _server(lookup, retransmit_ms=100)
    client = DtlsClient(psk, retransmit_ms=100)
    now = time.monotonic()
    client.start(now)
    for d in client.outgoing():
        server.receive_datagram(d, A, now)
    server.outgoing()  # the HelloVerifyRequest is lost
    deadline = client.next_deadline()
    assert deadline is not None and deadline - now <= 0.2
    time.sleep(0.15)  # GnuTLS times retransmissions on its own monotonic clock
    assert client.handle_timeout(time.monotonic()) == []
    wire = Wire(server)
    wire.attach(client, A)
    wire.pump(time.monotonic())
    assert client.established and server.session_count == 1


def test_resumption_with_session_tickets(lookup: InMemoryCredentialLookup, psk: PskCredentials,
                                         client_rpk: RpkCredentials, server_rpk: RpkCredentials,
                                         client1_x509: X509Credentials,
                                         server_x509: X509Credentials) -> None:
    server, now = _server(lookup, rpk=server_rpk, x509=server_x509), time.monotonic()
    wire = Wire(server)
    cases: list[tuple[DtlsClient, dict[str, object]]] = [
        (DtlsClient(psk, resumption=True), {}),
        (DtlsClient(client_rpk, server_public_key=server_rpk.public_key_der, resumption=True),
         {"server_public_key": server_rpk.public_key_der}),
        (DtlsClient(client1_x509, server_name="localhost", resumption=True),
         {"server_name": "localhost"}),
    ]
    creds = [psk, client_rpk, client1_x509]
    for i, (first, kwargs) in enumerate(cases):
        peer = ("192.0.2.10", 1000 + i)
        first_done = _of(wire.connect(first, peer, now), HandshakeCompleted)[0]
        assert not first_done.resumed
        ticket = first.session_data
        assert ticket
        again = DtlsClient(creds[i], session_data=ticket, **kwargs)  # type: ignore[arg-type]
        peer2 = ("192.0.2.11", 1000 + i)
        done = _of(wire.connect(again, peer2, now), HandshakeCompleted)[0]
        assert done.resumed and again.resumed
        server_done = _of(wire.server_events, HandshakeCompleted)[-1]
        assert server_done.peer == peer2 and server_done.resumed
        assert server_done.identity == _of(wire.server_events, HandshakeCompleted)[-2].identity
        _exchange(wire, peer2, now)


def test_resumption_rechecks_the_credentials(lookup: InMemoryCredentialLookup,
                                             psk: PskCredentials) -> None:
    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    first = DtlsClient(psk, resumption=True)
    wire.connect(first, A, now)
    ticket = first.session_data
    del lookup.psk[PSK_IDENTITY]  # the device was deregistered meanwhile
    events = wire.connect(DtlsClient(psk, session_data=ticket), B, now)
    # The server finishes an abbreviated handshake last, so the client learns of the
    # refusal from the access_denied alert that follows.
    assert "denied" in _of(events, SessionClosed)[0].reason
    assert isinstance(_of(wire.server_events, SessionClosed)[-1].error, UnknownIdentity)
    assert server.peers() == [A]


def test_resumption_can_be_disabled(lookup: InMemoryCredentialLookup,
                                    psk: PskCredentials) -> None:
    server, now = _server(lookup, resumption=False), time.monotonic()
    wire = Wire(server)
    first = DtlsClient(psk, resumption=True)
    wire.connect(first, A, now)
    ticket = first.session_data
    again = DtlsClient(psk, session_data=ticket) if ticket else DtlsClient(psk)
    done = _of(wire.connect(again, B, now), HandshakeCompleted)[0]
    assert not done.resumed


def test_close_notify_reaches_the_server(lookup: InMemoryCredentialLookup,
                                         psk: PskCredentials) -> None:
    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    client = DtlsClient(psk)
    wire.connect(client, A, now)
    client.close()
    wire.pump(now)
    (closed,) = _of(wire.server_events, SessionClosed)
    assert closed.reason == "closed by the peer" and closed.error is None
    assert server.session_count == 0


def test_idle_sessions_are_closed(lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server, now = _server(lookup, idle_timeout=10.0), time.monotonic()
    wire = Wire(server)
    wire.connect(DtlsClient(psk), A, now)
    wire.connect(DtlsClient(psk), B, now + 5)
    assert server.next_deadline() == pytest.approx(now + 10.0)
    assert server.handle_timeout(now + 9.0) == []
    wire.clients[A].send(b"keep-alive")
    wire.pump(now + 9.0)  # A's traffic moves its expiry to now + 19
    events = server.handle_timeout(now + 15.5)
    assert [(e.peer, e.reason) for e in _of(events, SessionClosed)] == [(B, "idle timeout")]
    wire.pump(now + 15.5)  # B receives the close_notify
    assert _of(wire.client_events[B], SessionClosed)
    assert server.peers() == [A]


def test_message_too_large(lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    from aiolwm2m.security import MessageTooLarge

    server, now = _server(lookup), time.monotonic()
    wire = Wire(server)
    client = DtlsClient(psk)
    wire.connect(client, A, now)
    limit = client.max_payload
    assert 1100 < limit < 1232
    client.send(b"x" * limit)
    with pytest.raises(MessageTooLarge):
        client.send(b"x" * (limit + 1))
    with pytest.raises(MessageTooLarge):
        server.send(A, b"x" * (server.max_payload(A) + 1), now)
    wire.pump(now)
    assert ApplicationData(A, b"x" * limit) in wire.server_events


def _is_up(client: DtlsClient) -> bool:
    return client.established  # a call, so mypy does not carry an earlier narrowing over


def test_lost_final_flight_is_retransmitted(lookup: InMemoryCredentialLookup,
                                            psk: PskCredentials) -> None:
    server = _server(lookup, retransmit_ms=100)
    client = DtlsClient(psk, retransmit_ms=100)
    now = time.monotonic()
    client.start(now)
    while not server.session_count:
        for datagram in client.outgoing():
            server.receive_datagram(datagram, A, now)
        flight = server.outgoing()
        if not server.session_count:
            for datagram, _ in flight:
                client.receive_datagram(datagram, now)
    # The server is done; its ChangeCipherSpec + Finished never arrive.
    assert not client.established
    time.sleep(0.15)
    assert client.handle_timeout(time.monotonic()) == []
    for datagram in client.outgoing():  # the client repeats its last flight...
        assert server.receive_datagram(datagram, A, time.monotonic()) == []
    resent = server.outgoing()  # ...and the established server session answers it again
    assert resent
    events = [e for d, _ in resent for e in client.receive_datagram(d, time.monotonic())]
    assert _of(events, HandshakeCompleted)
    assert _is_up(client)
    assert server.stats.handshakes_completed == 1 and server.stats.sessions_replaced == 0


def test_sni_is_sent_for_host_names_only(psk: PskCredentials) -> None:
    from aiolwm2m.security.records import HANDSHAKE_HEADER, RECORD_HEADER, _hello_extensions

    def hello_extensions(client: DtlsClient) -> dict[int, bytes]:
        client.start(time.monotonic())
        (hello,) = client.outgoing()
        client.close()
        return _hello_extensions(hello[RECORD_HEADER + HANDSHAKE_HEADER:], True)

    sni = hello_extensions(DtlsClient(psk, server_name="lwm2m.example.org")).get(0)
    assert sni is not None and sni.endswith(b"lwm2m.example.org")
    assert 0 not in hello_extensions(DtlsClient(psk, server_name="192.0.2.7"))
    assert 0 not in hello_extensions(DtlsClient(psk))


def test_closed_endpoints_refuse_work(lookup: InMemoryCredentialLookup,
                                      psk: PskCredentials) -> None:
    from aiolwm2m.security import SessionClosedError

    server, now = _server(lookup), time.monotonic()
    client = DtlsClient(psk)
    client.start(now)
    hello = client.outgoing()[0]
    server.close()
    assert server.receive_datagram(hello, A, now) == []
    client.close()
    with pytest.raises(SessionClosedError):
        client.start(now)
    with pytest.raises(SessionClosedError):
        client.send(b"x")
