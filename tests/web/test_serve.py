"""The web server (uvicorn in the server's loop): IPv6, a busy port, and a shutdown that does
not wait for event streams, which never end by themselves."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .sse_client import SseReader

TOKEN = "serve-token-0123456789"


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_serves_ipv6_and_refuses_a_busy_port() -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "::1", 0)
    await web.start()
    try:
        assert web.url.startswith("http://[::1]:")
        async with httpx.AsyncClient(base_url=web.url, timeout=10,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert (await http.get("/api/server")).json()["coap_port"] == server.port
        # A second server on the same port fails at start, not later.
        with pytest.raises(OSError):
            await WebServer(create_app(server, [TOKEN]), "::1", web.port).start()
    finally:
        await web.stop()
        await server.stop()


async def test_stop_ends_open_event_streams() -> None:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    readers = [SseReader(web.url, TOKEN) for _ in range(3)]
    try:
        for reader in readers:
            await reader.open()
        started = time.monotonic()
        await web.stop()
        # uvicorn gives open responses a second, then ends them.
        assert time.monotonic() - started < 4
        for reader in readers:  # each stream ended
            await asyncio.wait_for(reader.read_until(lambda r: False), 5)
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=web.url, timeout=2) as http:
                await http.get("/api/server")
    finally:
        for reader in readers:
            await reader.close()
        await server.stop()


def data_segments_received(sock: socket.socket) -> int:
    """Linux's tcp_info.tcpi_data_segs_in: TCP segments with data this socket received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < 156:
        pytest.skip("tcp_info without tcpi_data_segs_in (Linux < 4.6)")
    return int.from_bytes(info[152:156], "little")


async def test_a_response_is_one_segment() -> None:
    """Head and body of a response go out in one write (web/write_coalescing.py), not two:
    one TCP segment per response, also over keep-alive, and event streams still flow."""
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    try:
        sock = writer.get_extra_info("socket")
        segments = []
        for _ in range(3):
            writer.write(b"GET /api/health HTTP/1.1\r\nhost: x\r\n"
                         b"authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            assert head.startswith(b"HTTP/1.1 200") and body.startswith(b"{")
            segments.append(data_segments_received(sock))
        assert segments == [1, 2, 3]
        sse = SseReader(web.url, TOKEN)
        await sse.open()
        await sse.close()
    finally:
        writer.close()
        await web.stop()
        await server.stop()
