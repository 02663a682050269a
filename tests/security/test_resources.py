"""Native memory: nothing leaks over 10,000 sessions, and an idle session stays small."""

from __future__ import annotations

import gc
import time
from collections.abc import Hashable

from aiolwm2m.security import (
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    InMemoryCredentialLookup,
    PskCredentials,
    ServerCredentials,
    TlsClientConnection,
    TlsServer,
)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _connect(server: DtlsServer, client: DtlsClient, peer: Hashable, now: float) -> None:
    client.start(now)
    for _ in range(10):
        out = client.outgoing()
        if not out:
            break
        for datagram in out:
            server.receive_datagram(datagram, peer, now)
        for datagram, _ in server.outgoing():
            client.receive_datagram(datagram, now)
    assert client.established


def test_no_leak_over_10000_dtls_sessions(lookup: InMemoryCredentialLookup,
                                          psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup), DtlsServerConfig(resumption=False))
    now = time.monotonic()

    def cycle(first: int, count: int) -> None:
        for i in range(first, first + count):
            peer = ("10.9.0.1", i)
            client = DtlsClient(psk)
            _connect(server, client, peer, now)
            client.send(b"x")
            server.receive_datagram(client.outgoing()[0], peer, now)
            client.close()  # close_notify and gnutls_deinit, client credentials freed
            server.close_session(peer)
            server.outgoing()

    cycle(0, 1000)  # warm up allocator pools and caches
    gc.collect()
    before = _rss()
    cycle(1000, 10_000)
    gc.collect()
    grown = _rss() - before
    assert server.session_count == 0 and server.handshake_count == 0
    assert grown < 2_000_000, f"RSS grew {grown} bytes over 10,000 sessions"
    server.close()


def test_no_leak_over_tls_connections(lookup: InMemoryCredentialLookup,
                                      psk: PskCredentials) -> None:
    server = TlsServer(ServerCredentials(lookup))
    now = time.monotonic()

    def cycle(count: int) -> None:
        for _ in range(count):
            client, conn = TlsClientConnection(psk), server.accept("p", now)
            client.start(now)
            for _ in range(6):
                conn.receive_data(client.outgoing(), now)
                client.receive_data(conn.outgoing(), now)
            assert client.established
            client.close()
            conn.receive_data(client.outgoing(), now)
            conn.close()

    cycle(300)
    gc.collect()
    before = _rss()
    cycle(2000)
    gc.collect()
    grown = _rss() - before
    assert grown < 1_000_000, f"RSS grew {grown} bytes over 2,000 TLS connections"


def test_idle_session_memory(lookup: InMemoryCredentialLookup, psk: PskCredentials) -> None:
    server = DtlsServer(ServerCredentials(lookup), DtlsServerConfig(resumption=False))
    now = time.monotonic()
    for i in range(200):  # warm up
        client = DtlsClient(psk)
        _connect(server, client, ("10.8.0.1", i), now)
        client.close()
    gc.collect()
    before = _rss()
    for i in range(200, 2200):
        client = DtlsClient(psk)
        _connect(server, client, ("10.8.0.1", i), now)
        client.close()
        server.outgoing()
    gc.collect()
    per_session = (_rss() - before) / 2000
    assert server.session_count == 2200
    assert per_session < 16 * 1024, f"{per_session:.0f} bytes per idle session"
