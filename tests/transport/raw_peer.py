"""A bare UDP socket for tests that need to send exact bytes and see exact replies."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.message import Message


class RawPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RawPeer:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _, proto = await loop.create_datagram_endpoint(cls, local_addr=(host, 0), family=family)
        return proto

    @property
    def address(self) -> Any:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")

    def send(self, data: bytes | Message, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(encode_udp(data) if isinstance(data, Message) else data, addr)

    async def recv(self, timeout: float = 2.0) -> Message:
        data, _ = await asyncio.wait_for(self.queue.get(), timeout)
        return decode_udp(data)

    async def nothing(self, wait: float = 0.3) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
