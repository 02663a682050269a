"""Slow and huge HTTP request heads against the web server (``web/http_limits.py``): a
client that trickles its head, or never finishes it, loses its connection after the head
timeout; a head over the limit gets 431; neither holds the server's memory."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.http_limits import HttpLimits
from aiolwm2m.web.serve import WebServer

TOKEN = "heads-token-0123456789"
LIMITS = HttpLimits(head_timeout=1.0, max_head_bytes=8 * 1024, keep_alive_timeout=5.0)


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[WebServer]:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0, limits=LIMITS)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()
        await server.stop()


async def closed_after(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent until it closed the connection (fails after ``seconds``)."""
    async with asyncio.timeout(seconds):
        return await reader.read()


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(every)


async def test_a_trickled_head_is_cut_off() -> None:
    async with served() as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        head = (f"GET /api/server HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n"
                "x-slow: " + "a" * 200 + "\r\n\r\n").encode()
        started = time.monotonic()
        sending = asyncio.create_task(trickle(writer, head, 0.05))  # would take 14 s
        try:
            assert await closed_after(reader, 5) == b""
            assert time.monotonic() - started < 4
        finally:
            sending.cancel()
            writer.close()


async def test_a_silent_connection_is_cut_off() -> None:
    async with served() as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        assert await closed_after(reader, 5) == b""
        writer.close()


async def test_blank_lines_do_not_keep_a_connection() -> None:
    """Bytes that never make a request (CRLFs between requests) used to reset uvicorn's
    keep-alive timer each time; the head timer runs from the first of them."""
    async with served() as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(f"GET /api/server HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}"
                     "\r\n\r\n".encode())
        await writer.drain()
        sending = asyncio.create_task(trickle(writer, b"\r\n" * 200, 0.1))
        try:
            data = await closed_after(reader, 6)
            assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1
        finally:
            sending.cancel()
            writer.close()


async def test_a_huge_head_is_431() -> None:
    async with served() as web:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"GET /api/server HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(64):  # 256 KiB of headers in 4 KiB pieces, never ending
                writer.write(b"x-junk: " + b"j" * 4088 + b"\r\n")
                await writer.drain()
        data = await closed_after(reader, 5)
        assert data.startswith(b"HTTP/1.1 431 ") and b"larger than allowed" in data
        assert b"j" * 10 not in data  # nothing of the request is echoed
        writer.close()


async def test_heads_within_bounds_and_bodies_are_not_concerned() -> None:
    async with served() as web, httpx.AsyncClient(
            base_url=web.url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        # A head of 6 KiB is fine; a body in the same packets as its head is not counted.
        r = await http.get("/api/server", headers={"x-big": "b" * 6000})
        assert r.status_code == 200
        r = await http.post("/api/clients/nobody/write", content=b"{" + b" " * 200_000 + b"}",
                            headers={"content-type": "application/json"})
        assert r.status_code in (400, 404, 422), r.text
        # Keep-alive: the same connection serves requests spaced beyond the head timeout.
        await asyncio.sleep(1.5)
        assert (await http.get("/api/server")).status_code == 200
