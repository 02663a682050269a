"""DTLS engine figures: handshakes/s, CoAP requests/s encrypted vs plain, memory per session.

Run: .venv/bin/python bench/bench_dtls.py [--quick]

Everything runs in one process on one core. "in-memory" passes datagrams between the client
and server cores directly; "UDP" sends them through real sockets on 127.0.0.1 (a new client
socket, hence a new source port, for every handshake). Server-only figures count the time
spent inside DtlsServer calls, i.e. what one core of a server would spend per handshake.
"""

from __future__ import annotations

import argparse
import gc
import socket
import time
import tracemalloc
from collections.abc import Callable, Hashable
from typing import Any

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    InMemoryCredentialLookup,
    PskCredentials,
    ServerCredentials,
    gnutls_version,
)

PSK = PskCredentials(b"bench-device", b"0123456789abcdef")
TARGET_HANDSHAKES = 1500.0
TARGET_RATIO = 0.5
TARGET_SESSION_BYTES = 16 * 1024


def new_server(**config: object) -> DtlsServer:
    lookup = InMemoryCredentialLookup(psk={PSK.identity: PSK.key})
    cfg = DtlsServerConfig(max_sessions=100_000, **config)  # type: ignore[arg-type]
    return DtlsServer(ServerCredentials(lookup), cfg)


class ServerClock:
    """Accumulates the time spent inside server calls."""

    def __init__(self) -> None:
        self.spent = 0.0

    def receive(self, server: DtlsServer, data: bytes, peer: Hashable,
                now: float) -> list[tuple[bytes, Any]]:
        t = time.perf_counter()
        server.receive_datagram(data, peer, now)
        out = server.outgoing()
        self.spent += time.perf_counter() - t
        return out


def handshake_in_memory(server: DtlsServer, clock: ServerClock, peer: Hashable,
                        now: float) -> DtlsClient:
    client = DtlsClient(PSK)
    client.start(now)
    while True:
        out = client.outgoing()
        if not out:
            break
        for datagram in out:
            for reply, _ in clock.receive(server, datagram, peer, now):
                client.receive_datagram(reply, now)
    assert client.established
    return client


def bench_handshakes_in_memory(n: int) -> tuple[float, float]:
    server, clock, now = new_server(resumption=False), ServerClock(), time.monotonic()
    for i in range(50):
        handshake_in_memory(server, clock, ("10.0.0.1", i), now).close()
    clock.spent = 0.0
    t = time.perf_counter()
    for i in range(n):
        peer = ("10.0.0.2", i)
        handshake_in_memory(server, clock, peer, now).close()
        server.close_session(peer)
        server.outgoing()
    total = time.perf_counter() - t
    server.close()
    return n / total, n / clock.spent


def bench_handshakes_udp(n: int) -> tuple[float, float]:
    server, clock = new_server(resumption=False), ServerClock()
    ssock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssock.bind(("127.0.0.1", 0))
    ssock.settimeout(2.0)
    addr = ssock.getsockname()

    def one() -> None:
        csock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port each
        csock.settimeout(2.0)
        csock.connect(addr)
        client = DtlsClient(PSK)
        client.start(time.monotonic())
        try:
            while not client.established:
                for datagram in client.outgoing():
                    csock.send(datagram)
                    data, peer = ssock.recvfrom(65536)
                    for reply, to in clock.receive(server, data, peer, time.monotonic()):
                        ssock.sendto(reply, to)
                        client.receive_datagram(csock.recv(65536), time.monotonic())
            client.close()
            for datagram in client.outgoing():  # close_notify frees the server session
                csock.send(datagram)
                data, peer = ssock.recvfrom(65536)
                clock.receive(server, data, peer, time.monotonic())
        finally:
            csock.close()

    for _ in range(50):
        one()
    clock.spent = 0.0
    t = time.perf_counter()
    for _ in range(n):
        one()
    total = time.perf_counter() - t
    assert server.session_count == 0
    server.close()
    ssock.close()
    return n / total, n / clock.spent


def coap_server_step(request_bytes: bytes) -> bytes:
    request = decode_udp(request_bytes)
    response = request.response(Code.CONTENT, b"world", 0)
    response.mtype, response.mid = MessageType.ACK, request.mid
    return encode_udp(response)


def coap_request(i: int) -> bytes:
    msg = Message.request(Code.GET, "/hello", token=i.to_bytes(4, "big"))
    msg.mid = i & 0xFFFF
    return encode_udp(msg)


def bench_requests_in_memory(n: int) -> tuple[float, float]:
    def plain(count: int) -> None:
        for i in range(count):
            reply = coap_server_step(coap_request(i))
            assert decode_udp(reply).payload == b"world"

    server, now = new_server(), time.monotonic()
    peer = ("10.0.0.3", 1)
    client = handshake_in_memory(server, ServerClock(), peer, now)

    def encrypted(count: int) -> None:
        for i in range(count):
            client.send(coap_request(i))
            (record,) = client.outgoing()
            (event,) = server.receive_datagram(record, peer, now)
            server.send(peer, coap_server_step(event.data), now)  # type: ignore[union-attr]
            ((reply, _),) = server.outgoing()
            (answer,) = client.receive_datagram(reply, now)
            assert decode_udp(answer.data).payload == b"world"  # type: ignore[union-attr]

    return _rates(plain, encrypted, n)


def bench_requests_udp(n: int) -> tuple[float, float]:
    ssock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssock.bind(("127.0.0.1", 0))
    csock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    csock.connect(ssock.getsockname())
    for s in (ssock, csock):
        s.settimeout(2.0)

    def plain(count: int) -> None:
        for i in range(count):
            csock.send(coap_request(i))
            data, peer = ssock.recvfrom(65536)
            ssock.sendto(coap_server_step(data), peer)
            assert decode_udp(csock.recv(65536)).payload == b"world"

    server, now = new_server(), time.monotonic()
    client = DtlsClient(PSK)
    client.start(now)
    while not client.established:
        for datagram in client.outgoing():
            csock.send(datagram)
            data, peer = ssock.recvfrom(65536)
            server.receive_datagram(data, peer, now)
            for reply, _ in server.outgoing():
                ssock.sendto(reply, peer)
                client.receive_datagram(csock.recv(65536), now)

    def encrypted(count: int) -> None:
        for i in range(count):
            client.send(coap_request(i))
            csock.send(client.outgoing()[0])
            data, peer = ssock.recvfrom(65536)
            (event,) = server.receive_datagram(data, peer, now)
            server.send(peer, coap_server_step(event.data), now)  # type: ignore[union-attr]
            ((reply, _),) = server.outgoing()
            ssock.sendto(reply, peer)
            (answer,) = client.receive_datagram(csock.recv(65536), now)
            assert decode_udp(answer.data).payload == b"world"  # type: ignore[union-attr]

    rates = _rates(plain, encrypted, n)
    ssock.close()
    csock.close()
    return rates


def _rates(plain: Callable[[int], None], encrypted: Callable[[int], None], n: int,
           rounds: int = 5) -> tuple[float, float]:
    """Best rate of each over interleaved rounds: shared machines are noisy, and
    interleaving keeps a slow spell from landing on one side only."""
    best_plain = best_encrypted = 0.0
    chunk = max(1, n // rounds)
    for _ in range(rounds):
        for run, which in ((plain, 0), (encrypted, 1)):
            t = time.perf_counter()
            run(chunk)
            rate = chunk / (time.perf_counter() - t)
            if which == 0:
                best_plain = max(best_plain, rate)
            else:
                best_encrypted = max(best_encrypted, rate)
    return best_plain, best_encrypted


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def bench_session_memory(n: int) -> tuple[float, float]:
    """(RSS bytes, Python-heap bytes) per established idle session on the server."""
    server, clock, now = new_server(), ServerClock(), time.monotonic()
    for i in range(200):
        handshake_in_memory(server, clock, ("10.1.0.1", i), now).close()
        server.outgoing()
    gc.collect()
    tracemalloc.start()
    py_before = tracemalloc.get_traced_memory()[0]
    rss_before = _rss()
    for i in range(n):
        handshake_in_memory(server, clock, ("10.1.0.2", i), now).close()
        server.outgoing()  # the clients' close_notify is never delivered: sessions stay
    gc.collect()
    rss = (_rss() - rss_before) / n
    py = (tracemalloc.get_traced_memory()[0] - py_before) / n
    tracemalloc.stop()
    assert server.session_count == n + 200
    server.close()
    return rss, py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (smoke run)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    hs_n, req_n, mem_n = int(5000 * scale), int(20000 * scale), 2000

    print(f"GnuTLS {gnutls_version()}, PSK, TLS_PSK_WITH_AES_128_CCM_8, one core\n")
    rows: list[tuple[str, str, str]] = []
    both, server_only = bench_handshakes_in_memory(hs_n)
    rows.append(("full PSK handshakes/s, in-memory, client+server", f"{both:,.0f}", ""))
    rows.append(("  server core only (time inside DtlsServer)", f"{server_only:,.0f}",
                 f"target >= {TARGET_HANDSHAKES:,.0f}: "
                 f"{'OK' if server_only >= TARGET_HANDSHAKES else 'MISSED'}"))
    both, server_only = bench_handshakes_udp(hs_n)
    rows.append(("full PSK handshakes/s, UDP, new port each, c+s", f"{both:,.0f}",
                 f"target >= {TARGET_HANDSHAKES:,.0f}: "
                 f"{'OK' if both >= TARGET_HANDSHAKES else 'MISSED'}"))
    rows.append(("  server core only", f"{server_only:,.0f}", ""))
    for label, bench in (("in-memory", bench_requests_in_memory), ("UDP", bench_requests_udp)):
        plain, encrypted = bench(req_n)
        ratio = encrypted / plain
        rows.append((f"CoAP GET round trips/s, {label}, plain", f"{plain:,.0f}", ""))
        rows.append((f"CoAP GET round trips/s, {label}, DTLS", f"{encrypted:,.0f}",
                     f"ratio {ratio:.2f}x (target >= {TARGET_RATIO}x: "
                     f"{'OK' if ratio >= TARGET_RATIO else 'MISSED'})"))
    rss, py = bench_session_memory(mem_n)
    rows.append((f"memory per idle session (RSS delta, {mem_n:,} sessions)", f"{rss:,.0f} B",
                 f"target <= {TARGET_SESSION_BYTES:,} B: "
                 f"{'OK' if rss <= TARGET_SESSION_BYTES else 'MISSED'}"))
    rows.append(("  of which Python objects (tracemalloc)", f"{py:,.0f} B", ""))
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    main()
