"""Attack traffic for ``bench_hostile.py``, one kind per process, at a fixed rate.

    python bench/hostile_attacks.py KIND --port P [--tcp-port T] [--dtls-port D]
                                         [--rate R] [--seconds S] [--sources N]

KIND is one of:
  amplify     CON GETs whose Uri-Path is 6.4 KB of bytes that percent-encode to 3x
  garbage     malformed datagrams (bad version, truncated options, bad token lengths)
  hijack      Updates and De-registers to guessed /rd/{id}s from many ports
  block1      unregistered Block1 transfers: first blocks of 1 MiB bodies, never finished
  bigreg      Registers of 60,000 object instances, sent block-wise
  slowloris   TCP: CSM then silence, and frames left unfinished, reopened when closed
  dtls        cookie-verified DTLS ClientHellos left half-open

Each kind spreads itself over ``--sources`` loopback addresses (127.0.0.1, 127.0.0.2, ...), as
a distributed attacker would. At the end it prints one line ``sent=.. sent_bytes=..
recv=.. recv_bytes=.. errors=..`` (the reply bytes give the amplification factor).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator

URI_PATH = 11
CONTENT_FORMAT = 12
URI_QUERY = 15
BLOCK1 = 27
SIZE1 = 60


#: Set by SIGTERM: the attack stops and prints its figures.
STOP = False


def _stop(*_: object) -> None:
    global STOP
    STOP = True


class Stats:
    def __init__(self) -> None:
        self.sent = self.sent_bytes = self.recv = self.recv_bytes = self.errors = 0

    def line(self) -> str:
        return (f"sent={self.sent} sent_bytes={self.sent_bytes} recv={self.recv} "
                f"recv_bytes={self.recv_bytes} errors={self.errors}")


def nibble(n: int) -> tuple[int, bytes]:
    """An option delta or length: its 4-bit code and the extended bytes that follow."""
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, struct.pack("!H", n - 269)


def options(opts: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    last = 0
    for number, value in sorted(opts, key=lambda o: o[0]):
        d, d_ext = nibble(number - last)
        ln, ln_ext = nibble(len(value))
        last = number
        out += bytes([d << 4 | ln]) + d_ext + ln_ext + value
    return bytes(out)


def coap(code: int, mid: int, opts: list[tuple[int, bytes]], payload: bytes = b"",
         token: bytes = b"\x01\x02\x03\x04") -> bytes:
    head = struct.pack("!BBH", 0x40 | len(token), code, mid) + token
    body = options(opts)
    return head + body + (b"\xff" + payload if payload else b"")


def block_value(num: int, more: bool, szx: int) -> bytes:
    v = num << 4 | (8 if more else 0) | szx
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big") if v else b""


def sources(n: int) -> list[str]:
    return [f"127.0.0.{i + 1}" for i in range(max(1, n))]


def paced(rate: float, seconds: float) -> Iterator[int]:
    """Yields a counter at ``rate`` per second for ``seconds``."""
    start = time.monotonic()
    i = 0
    while True:
        due = start + i / rate
        now = time.monotonic()
        if now - start >= seconds or STOP:
            return
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        yield i
        i += 1


def udp_sockets(addrs: list[str], per_addr: int) -> list[socket.socket]:
    socks = []
    for a in addrs:
        for _ in range(per_addr):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((a, 0))
            s.setblocking(False)
            socks.append(s)
    return socks


def drain(socks: list[socket.socket], stats: Stats) -> None:
    for s in socks:
        while True:
            try:
                data = s.recv(70000)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                stats.errors += 1
                break
            stats.recv += 1
            stats.recv_bytes += len(data)


def udp_attack(port: int, rate: float, seconds: float, addrs: list[str],
               make: Callable[[int], list[bytes]], group: int = 1) -> Stats:
    """Sends ``make(i)`` at ``rate`` a second; ``group`` consecutive ticks share a socket
    (the blocks of one transfer come from one peer)."""
    stats = Stats()
    socks = udp_sockets(addrs, 4)
    for i in paced(rate, seconds):
        s = socks[(i // group) % len(socks)]
        for datagram in make(i):
            try:
                s.sendto(datagram, ("127.0.0.1", port))
                stats.sent += 1
                stats.sent_bytes += len(datagram)
            except (BlockingIOError, InterruptedError):
                stats.errors += 1
        if i % 64 == 0:
            drain(socks, stats)
    time.sleep(0.5)
    drain(socks, stats)
    return stats


def amplify(i: int) -> list[bytes]:
    segment = b"\xff" * 250
    return [coap(1, i & 0xFFFF, [(URI_PATH, segment)] * 25)]


def garbage(i: int) -> list[bytes]:
    rnd = random.Random(i)
    kind = i % 4
    if kind == 0:
        return [bytes([0x80 | rnd.randrange(64)]) + os.urandom(rnd.randrange(3, 200))]
    if kind == 1:  # token length 9-15 is a message format error
        return [bytes([0x40 | rnd.randrange(9, 16), 1]) + os.urandom(20)]
    if kind == 2:  # an option whose length runs past the end
        return [coap(1, i & 0xFFFF, []) + b"\xbd\xff"]
    return [os.urandom(rnd.randrange(1, 1400))]


def hijack(i: int) -> list[bytes]:
    guess = os.urandom(9).hex()[:12].encode()
    code = 2 if i % 2 else 4  # Update (POST) or De-register (DELETE)
    return [coap(code, i & 0xFFFF, [(URI_PATH, b"rd"), (URI_PATH, guess)])]


def block1(i: int) -> list[bytes]:
    # One datagram a tick: transfers of a 1 MiB body in 1 KiB blocks, each sending blocks
    # 0..3 and never finishing (transfer i // 4, block i % 4).
    transfer, num = divmod(i, 4)
    opts = [(URI_PATH, b"rd"), (URI_QUERY, f"ep=attacker-{transfer}".encode()),
            (URI_QUERY, b"lt=300"), (CONTENT_FORMAT, b"\x28"),
            (BLOCK1, block_value(num, True, 6)), (SIZE1, (1 << 20).to_bytes(3, "big"))]
    return [coap(2, i & 0xFFFF, opts, b"<" + b"x" * 1023, token=struct.pack("!I", transfer))]


def bigreg_blocks(i: int) -> list[bytes]:
    links = b",".join(b"</%d/%d>" % (3300 + (k // 60), k % 60) for k in range(60_000))
    token = struct.pack("!I", i)
    out = []
    size = 1024
    for num in range(0, len(links), size):
        more = num + size < len(links)
        opts = [(URI_PATH, b"rd"), (URI_QUERY, f"ep=big-{i}".encode()),
                (URI_QUERY, b"lwm2m=1.1"), (CONTENT_FORMAT, b"\x28"),
                (BLOCK1, block_value(num // size, more, 6))]
        out.append(coap(2, (i * 1000 + num // size) & 0xFFFF, opts, links[num:num + size],
                        token=token))
    return out


def bigreg(port: int, rate: float, seconds: float, addrs: list[str]) -> Stats:
    # Block-wise: each block waits for its 2.31 Continue, as a real client's would.
    stats = Stats()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addrs[0], 0))
    sock.settimeout(2.0)
    for i in paced(rate, seconds):
        for datagram in bigreg_blocks(i):
            sock.sendto(datagram, ("127.0.0.1", port))
            stats.sent += 1
            stats.sent_bytes += len(datagram)
            try:
                reply = sock.recv(70000)
            except TimeoutError:
                stats.errors += 1
                break
            stats.recv += 1
            stats.recv_bytes += len(reply)
            if reply[1] >> 5 != 2:  # not 2.xx: the server refused the transfer
                break
    return stats


async def slowloris(port: int, rate: float, seconds: float, addrs: list[str],
                    hold: int) -> Stats:
    """Keeps up to ``hold`` connections open (CSM then silence, or a frame left unfinished),
    opening ``rate`` new ones a second as the server closes them."""
    stats = Stats()
    open_conns: set[asyncio.StreamWriter] = set()

    async def one(i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(addrs[i % len(addrs)], 0))
        except OSError:
            stats.errors += 1
            return
        open_conns.add(writer)
        try:
            if i % 2:
                data = b"\x00\xe1"  # a CSM, then nothing
            else:  # 60 KB of a 65 KB frame
                length = 65_000
                data = b"\xe0" + struct.pack("!H", length - 269) + b"\x45" + b"z" * 60_000
            writer.write(data)
            stats.sent += 1
            stats.sent_bytes += len(data)
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                stats.recv += 1
                stats.recv_bytes += len(chunk)
        except OSError:
            stats.errors += 1
        finally:
            open_conns.discard(writer)
            writer.close()

    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds and not STOP:
        if len(open_conns) + 16 < hold:
            for _ in range(16):
                t = asyncio.create_task(one(i))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
        await asyncio.sleep(16 / rate)
    for t in list(tasks):
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def dtls_half_open(port: int, rate: float, seconds: float, addrs: list[str]) -> Stats:
    """Each handshake answers the HelloVerifyRequest (so the server spends state on it) and
    then stalls."""
    from aiolwm2m.security import DtlsClient, PskCredentials

    stats = Stats()
    psk = PskCredentials(b"attacker", b"\x00" * 16)
    pending: dict[socket.socket, DtlsClient] = {}
    for i in paced(rate, seconds):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addrs[i % len(addrs)], 0))
        s.setblocking(False)
        client = DtlsClient(psk)
        client.start(time.monotonic())
        for record in client.outgoing():
            s.sendto(record, ("127.0.0.1", port))
            stats.sent += 1
            stats.sent_bytes += len(record)
        pending[s] = client
        for sock, c in list(pending.items()):
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                stats.errors += 1
                data = b""
            stats.recv += 1
            stats.recv_bytes += len(data)
            if data:
                c.receive_datagram(data, time.monotonic())
                for record in c.outgoing():  # the ClientHello with the cookie
                    sock.sendto(record, ("127.0.0.1", port))
                    stats.sent += 1
                    stats.sent_bytes += len(record)
            c.close()
            sock.close()
            del pending[sock]
    for sock, c in pending.items():
        c.close()
        sock.close()
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["amplify", "garbage", "hijack", "block1", "bigreg",
                                     "slowloris", "dtls"])
    ap.add_argument("--port", type=int, required=True, help="UDP CoAP port")
    ap.add_argument("--tcp-port", type=int)
    ap.add_argument("--dtls-port", type=int)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=32)
    ap.add_argument("--hold", type=int, default=2000, help="slowloris: connections to hold")
    a = ap.parse_args()
    addrs = sources(a.sources)
    signal.signal(signal.SIGTERM, _stop)
    print("ready", flush=True)
    if a.kind == "slowloris":
        stats = asyncio.run(slowloris(a.tcp_port, a.rate, a.seconds, addrs, a.hold))
    elif a.kind == "dtls":
        stats = dtls_half_open(a.dtls_port, a.rate, a.seconds, addrs)
    elif a.kind == "bigreg":
        stats = bigreg(a.port, a.rate, a.seconds, addrs)
    else:
        make = {"amplify": amplify, "garbage": garbage, "hijack": hijack,
                "block1": block1}[a.kind]
        stats = udp_attack(a.port, a.rate, a.seconds, addrs, make,
                           group=4 if a.kind == "block1" else 1)
    print(stats.line(), flush=True)


if __name__ == "__main__":
    main()
