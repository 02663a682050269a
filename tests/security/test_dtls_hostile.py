"""Hostile and broken input to DtlsServer: nothing may allocate state or disturb other peers."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from aiolwm2m.security import (
    ApplicationData,
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    HandshakeCompleted,
    InMemoryCredentialLookup,
    PskCredentials,
    ServerCredentials,
    SessionClosed,
)

from .memory_pair import Wire

A = ("198.51.100.1", 5001)
B = ("198.51.100.2", 5002)


def _established(lookup: InMemoryCredentialLookup, psk: PskCredentials,
                 **config: object) -> tuple[DtlsServer, Wire, float]:
    server = DtlsServer(ServerCredentials(lookup), DtlsServerConfig(**config))  # type: ignore[arg-type]
    wire, now = Wire(server), time.monotonic()
    wire.connect(DtlsClient(psk), A, now)
    assert server.peers() == [A]
    return server, wire, now


def _still_serves(wire: Wire, peer: tuple[str, int], now: float, payload: bytes) -> None:
    wire.clients[peer].send(payload)
    wire.pump(now)
    assert wire.server_events[-1] == ApplicationData(peer, payload)


def _client_hello(psk: PskCredentials) -> bytes:
    client = DtlsClient(psk)
    client.start(time.monotonic())
    (hello,) = client.outgoing()
    client.close()
    return hello


def test_cookieless_client_hello_flood_allocates_nothing(lookup: InMemoryCredentialLookup,
                                                         psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup))
    hello, now = _client_hello(psk), time.monotonic()
    for i in range(50):  # warm up lazily created module state
        server.receive_datagram(hello, ("203.0.113.1", i), now)
    server.outgoing()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            assert server.receive_datagram(hello, (f"203.0.113.{i % 250}", 1024 + i), now) == []
            server.outgoing()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert server.session_count == 0 and server.handshake_count == 0
    assert server.stats.hello_verify_requests == 5050
    assert server.stats.handshakes_started == 0
    assert grown < 20_000, f"{grown} bytes retained after 5000 ClientHellos"
    # ...and a real client still gets through.
    wire = Wire(server)
    assert any(isinstance(e, HandshakeCompleted) for e in wire.connect(DtlsClient(psk), A, now))


def test_each_hello_verify_request_is_answered_to_its_sender(lookup: InMemoryCredentialLookup,
                                                             psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup))
    hello, now = _client_hello(psk), time.monotonic()
    server.receive_datagram(hello, A, now)
    server.receive_datagram(hello, B, now)
    (hvr_a, peer_a), (hvr_b, peer_b) = server.outgoing()
    assert (peer_a, peer_b) == (A, B)
    assert hvr_a[0] == 22 and hvr_a[13] == 3  # handshake record, HelloVerifyRequest
    assert hvr_a != hvr_b  # the cookie is bound to the address


def test_garbage_is_dropped_without_harm(lookup: InMemoryCredentialLookup,
                                         psk: PskCredentials) -> None:
    server, wire, now = _established(lookup, psk)
    noise = random.Random(7).randbytes
    garbage = [b"", b"\x00", noise(40), b"\x17\xfe\xfd" + noise(100),
               b"\x16\xfe\xfd\x00\x00" + noise(8)]
    for data in garbage:
        for peer in (A, B):  # the established peer and an unknown one
            assert server.receive_datagram(data, peer, now) == []
    # A well-framed application record with garbage inside: GnuTLS drops it (bad MAC).
    forged = b"\x17\xfe\xfd\x00\x01" + noise(6) + (40).to_bytes(2, "big") + noise(40)
    assert server.receive_datagram(forged, A, now) == []
    assert server.outgoing() == []
    assert server.stats.dropped_malformed >= 8
    _still_serves(wire, A, now, b"after garbage")


def test_replayed_records_are_not_delivered_twice(lookup: InMemoryCredentialLookup,
                                                  psk: PskCredentials) -> None:
    server, wire, now = _established(lookup, psk)
    wire.captured.clear()
    _still_serves(wire, A, now, b"once")
    ((_, record),) = wire.captured
    for _ in range(3):
        assert server.receive_datagram(record, A, now) == []
    assert [e for e in wire.server_events if e == ApplicationData(A, b"once")] == \
        [ApplicationData(A, b"once")]
    _still_serves(wire, A, now, b"twice")


def test_records_of_a_peer_sent_from_another_address_are_dropped(
        lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server, wire, now = _established(lookup, psk)
    wire.captured.clear()
    _still_serves(wire, A, now, b"mine")
    ((_, record),) = wire.captured
    assert server.receive_datagram(record, B, now) == []
    assert server.stats.dropped_unknown_peer == 1
    assert server.handshake_count == 0


def test_oversize_datagrams_and_records_are_dropped(lookup: InMemoryCredentialLookup,
                                                    psk: PskCredentials) -> None:
    server, wire, now = _established(lookup, psk, max_datagram_size=4096)
    assert server.receive_datagram(bytes(5000), A, now) == []
    assert server.stats.dropped_oversize == 1
    # A record header claiming more than 2^14 + 2048 bytes.
    huge = b"\x17\xfe\xfd\x00\x01" + b"\x00" * 6 + (20000).to_bytes(2, "big") + b"\x00" * 100
    assert server.receive_datagram(huge, A, now) == []
    assert server.stats.dropped_malformed == 1
    _still_serves(wire, A, now, b"still here")


def test_new_client_hello_replaces_an_established_session(lookup: InMemoryCredentialLookup,
                                                          psk: PskCredentials) -> None:
    server, wire, now = _established(lookup, psk)
    old = wire.clients[A]
    # The device rebooted and starts over from the same address and port.
    restarted = DtlsClient(psk)
    wire.connect(restarted, A, now)
    closed = [e for e in wire.server_events if isinstance(e, SessionClosed)]
    assert [(e.peer, e.established) for e in closed] == [(A, True)]
    assert "replaced" in closed[0].reason
    assert [e.peer for e in wire.server_events if isinstance(e, HandshakeCompleted)] == [A, A]
    assert server.stats.sessions_replaced == 1 and server.peers() == [A]
    _still_serves(wire, A, now, b"new session")
    # The old session's records no longer decrypt.
    old.send(b"stale")
    for datagram in old.outgoing():
        assert server.receive_datagram(datagram, A, now) == []


def test_a_retransmitted_client_hello_does_not_restart_the_handshake(
        lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup))
    wire, now = Wire(server), time.monotonic()
    client = DtlsClient(psk)
    wire.connect(client, A, now)
    hellos = [d for _, d in wire.captured if d[0] == 22 and d[13] == 1]
    assert len(hellos) == 2  # without and with cookie
    for hello in hellos:  # late duplicates of both
        server.receive_datagram(hello, A, now)
    server.outgoing()
    assert server.stats.sessions_replaced == 0 and server.peers() == [A]
    _still_serves(wire, A, now, b"same session")


def test_handshake_and_session_limits(lookup: InMemoryCredentialLookup,
                                      psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup),
                        DtlsServerConfig(max_handshakes=2, max_sessions=3))
    now = time.monotonic()
    clients = [DtlsClient(psk) for _ in range(5)]
    flights: list[list[bytes]] = []
    for i, client in enumerate(clients):
        client.start(now)
        (hello,) = client.outgoing()
        server.receive_datagram(hello, ("192.0.2.50", i), now)
        (hvr, _), = server.outgoing()
        client.receive_datagram(hvr, now)
        flights.append(client.outgoing())
    for i, flight in enumerate(flights):  # ClientHellos with valid cookies
        for d in flight:
            server.receive_datagram(d, ("192.0.2.50", i), now)
    assert server.handshake_count == 2 and server.stats.refused_full == 3
    wire = Wire(server)
    for i in range(2):
        wire.attach(clients[i], ("192.0.2.50", i))
    server_out = server.outgoing()
    for d, peer in server_out:
        wire.client_events[peer] += wire.clients[peer].receive_datagram(d, now)
    wire.pump(now)
    assert server.session_count == 2 and server.handshake_count == 0
    assert wire.connect(DtlsClient(psk), ("192.0.2.60", 1), now)
    assert server.session_count == 3
    wire.connect(DtlsClient(psk), ("192.0.2.60", 2), now)
    assert server.session_count == 3 and server.stats.refused_full == 4
