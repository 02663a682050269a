"""Baseline for the CoAP benchmarks: the least a Python UDP responder can do.

It drains the socket on every wake-up and answers each datagram with a fixed 2.05 piggybacked
response that echoes the message ID and token: no parsing, no deduplication, no routing.
"""

from __future__ import annotations

import asyncio
import socket
import sys

PAYLOAD = b"\xffhello"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    port = int(args[0]) if args else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    recvfrom, sendto = sock.recvfrom, sock.sendto

    def on_readable() -> None:
        for _ in range(256):
            try:
                data, addr = recvfrom(2048)
            except BlockingIOError:
                return
            tkl = data[0] & 0x0F
            sendto(bytes((0x60 | tkl, 0x45, data[2], data[3])) + data[4:4 + tkl] + PAYLOAD, addr)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), on_readable)
        print(f"ready {sock.getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
