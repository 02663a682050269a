"""A bare TCP client for tests that send exact bytes and read back exact frames."""

from __future__ import annotations

import asyncio
import socket

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.signals import Capabilities, build_csm
from aiolwm2m.coap.tcp_framing import FrameParser, encode_tcp


class RawStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(1 << 24)
        self.frames: list[Message] = []

    @classmethod
    async def open(cls, port: int, *, csm: bool = True, rcvbuf: int | None = None,
                   source: str | None = None) -> RawStream:
        """Connect to 127.0.0.1:``port``, from the loopback address ``source`` if given."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        raw = cls(reader, writer)
        if csm:
            raw.send(build_csm(Capabilities(1 << 20, True)))
        return raw

    def send(self, data: bytes | Message) -> None:
        self.writer.write(encode_tcp(data) if isinstance(data, Message) else data)

    async def recv(self, timeout: float = 3.0) -> Message:
        """The next frame; raises EOFError when the server closed the connection."""
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("server closed the connection")
            self.frames += self.parser.feed(data)
        return self.frames.pop(0)

    async def recv_until(self, code: int, timeout: float = 3.0) -> Message:
        while True:
            msg = await self.recv(timeout)
            if msg.code == code:
                return msg

    async def closed_by_server(self, timeout: float = 3.0) -> bool:
        try:
            while True:
                await self.recv(timeout)
        except EOFError:
            return True
        except (ConnectionResetError, TimeoutError):
            return False

    def close(self) -> None:
        self.writer.close()
