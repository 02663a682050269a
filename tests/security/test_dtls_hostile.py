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
from aiolwm2m.security.dtls_server import source_of

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


def _half_open(server: DtlsServer, psk: PskCredentials, peers: list[tuple[str, int]],
               now: float) -> list[DtlsClient]:
    """Cookie-verified handshakes from ``peers`` whose clients then stall."""
    clients = [DtlsClient(psk) for _ in peers]
    flights: list[list[bytes]] = []
    for client, peer in zip(clients, peers, strict=True):
        client.start(now)
        (hello,) = client.outgoing()
        server.receive_datagram(hello, peer, now)
        (hvr, _), = server.outgoing()
        client.receive_datagram(hvr, now)
        flights.append(client.outgoing())
    for flight, peer in zip(flights, peers, strict=True):  # ClientHellos with valid cookies
        for d in flight:
            server.receive_datagram(d, peer, now)
    server.outgoing()
    return clients


def test_stalled_handshakes_make_way_for_new_ones(lookup: InMemoryCredentialLookup,
                                                  psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup), DtlsServerConfig(max_handshakes=4))
    now = time.monotonic()
    stalled = [(f"192.0.2.{i}", 1000 + i) for i in range(10)]
    _half_open(server, psk, stalled, now)
    assert server.handshake_count == 4 and server.stats.handshakes_evicted == 6
    assert server.stats.refused_full == 0
    # A legitimate client completes, replacing the oldest stalled handshake.
    wire = Wire(server)
    assert any(isinstance(e, HandshakeCompleted)
               for e in wire.connect(DtlsClient(psk), ("198.51.100.9", 1), now))
    assert server.session_count == 1 and server.handshake_count == 3


def test_half_open_handshakes_per_address_are_capped(lookup: InMemoryCredentialLookup,
                                                     psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup),
                        DtlsServerConfig(max_handshakes=100, max_handshakes_per_address=3))
    now = time.monotonic()
    _half_open(server, psk, [("192.0.2.50", i) for i in range(5)], now)
    # One IPv6 host picks addresses from its /64: still one source.
    _half_open(server, psk, [(f"2001:db8::{i:x}", 7, 0, 0) for i in range(1, 6)], now)
    assert server.handshake_count == 6 and server.stats.refused_per_address == 4
    assert server.stats.handshakes_evicted == 0
    # Other addresses are not held up, and a finished handshake frees its source's slot.
    wire = Wire(server)
    assert any(isinstance(e, HandshakeCompleted)
               for e in wire.connect(DtlsClient(psk), ("192.0.2.51", 1), now))
    server.close_session(("192.0.2.50", 0))
    assert any(isinstance(e, HandshakeCompleted)
               for e in wire.connect(DtlsClient(psk), ("192.0.2.50", 99), now))


def test_established_sessions_are_never_given_up_for_handshakes(
        lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup),
                        DtlsServerConfig(max_handshakes=2, max_sessions=3))
    now = time.monotonic()
    wire = Wire(server)
    for i in range(3):
        wire.connect(DtlsClient(psk), ("192.0.2.60", i), now)
    assert server.session_count == 3
    _half_open(server, psk, [("192.0.2.61", 1)], now)
    assert server.session_count == 3 and server.handshake_count == 0
    assert server.stats.refused_full == 1


def test_sources_of_the_per_address_quota() -> None:
    assert source_of(("192.0.2.7", 1)) == source_of(("::ffff:192.0.2.7", 2, 0, 0))
    assert source_of(("2001:db8::1", 1, 0, 0)) == source_of(("2001:db8::ffff:1", 9, 0, 0))
    assert source_of(("2001:db8::1", 1, 0, 0)) != source_of(("2001:db8:0:1::1", 1, 0, 0))
    assert source_of(("fe80::1%eth0", 1, 0, 2)) == source_of(("fe80::2", 1, 0, 2))
    assert source_of("opaque-peer") == "opaque-peer"
