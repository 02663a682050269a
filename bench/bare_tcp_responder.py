"""Baseline for the CoAP-over-TCP benchmark: the least a Python asyncio server can do.

Same framing as the real thing (RFC 8323 Len/TKL header, extended lengths): it sends a CSM
on connect, splits the received stream into frames and answers every request frame with a
fixed 2.05 "hello" carrying the request's token. No options are parsed, nothing is routed.

It reads with ``asyncio.BufferedProtocol`` into one preallocated buffer: a plain
``Protocol`` makes asyncio allocate a 256 KiB bytes object per read, which in a small
process costs more than everything else here and would flatter the comparison.
"""

from __future__ import annotations

import asyncio
import sys

_HEADER = (1,) * 13 + (2, 3, 5)
_OFFSET = (0,) * 13 + (13, 269, 65805)
CSM = b"\x00\xe1"
_READ = bytearray(65536)
_VIEW = memoryview(_READ)


class BareResponder(asyncio.BufferedProtocol):
    __slots__ = ("partial", "transport")

    def __init__(self) -> None:
        self.partial = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(CSM)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _VIEW

    def buffer_updated(self, nbytes: int) -> None:
        data = self.partial + _READ[:nbytes] if self.partial else _READ[:nbytes]
        out = []
        pos, n = 0, len(data)
        while pos < n:
            b0 = data[pos]
            nib, tkl = b0 >> 4, b0 & 15
            hl = _HEADER[nib]
            if pos + hl > n:
                break
            length = nib if nib < 13 else int.from_bytes(data[pos + 1:pos + hl], "big") + \
                _OFFSET[nib]
            end = pos + hl + 1 + tkl + length
            if end > n:
                break
            code = data[pos + hl]
            if 0 < code < 32:
                token = data[pos + hl + 1:pos + hl + 1 + tkl]
                # Len 6 = 0xFF marker + "hello"; code 2.05.
                out.append(bytes((0x60 | tkl, 0x45)) + token + b"\xffhello")
            pos = end
        self.partial = bytes(data[pos:])
        if out and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


async def run(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BareResponder, "127.0.0.1", port, backlog=4096)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
