"""The web port over HTTPS against peers that open connections and never finish (or never
start) a TLS handshake, or send something else: each is bounded per address and in all,
closed after the head timeout, counted, and the port keeps serving everyone else."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from aiolwm2m.web.http_limits import HttpLimits
from aiolwm2m.web.serve import WebServer, https_context

from ..security.pki import Pki, make_pki
from .test_http2_exhaustion import until

# A head timeout long enough that every connection of a case is accepted and counted
# before the first stalled handshake times out, even on a loaded machine.
LIMITS = HttpLimits(head_timeout=3.0, tls_max_handshakes=40, tls_handshakes_per_address=8,
                    tls_max_connections=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def web(pki: Pki) -> AsyncIterator[WebServer]:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    server = WebServer(app, "127.0.0.1", 0, limits=LIMITS,
                       tls=https_context(pki.path("server_chain.pem"), pki.path("server.key")))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def stalled(port: int, source: str, count: int) -> list[socket.socket]:
    """``count`` connections from ``source`` that send nothing."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


async def hello(web: WebServer, pki: Pki) -> int:
    trust = ssl.create_default_context(cafile=str(pki.path("root.pem")))
    async with httpx.AsyncClient(base_url=web.url, verify=trust, timeout=5) as c:
        return (await c.get("/hello")).status_code


async def test_stalled_handshakes_are_bounded_per_address_and_time_out(web: WebServer,
                                                                      pki: Pki) -> None:
    listener = web.tls_listener
    assert listener is not None
    socks = stalled(web.port, "127.0.0.3", 30)
    try:
        await until(lambda: listener.handshakes + listener.refused == 30)
        # One address holds 8 handshakes; the other 22 were closed before any TLS work.
        assert (listener.handshakes, listener.refused) == (8, 22)
        # Someone else is served meanwhile.
        assert await hello(web, pki) == 200
        # The stalled handshakes end after the head timeout, and their slots come back.
        await until(lambda: listener.handshakes == 0 and listener.connections == 0, 10)
        assert listener.failed_handshakes >= 8
    finally:
        for s in socks:
            s.close()
    assert await hello(web, pki) == 200


async def test_handshakes_in_all_and_connections_are_bounded(web: WebServer, pki: Pki
                                                             ) -> None:
    listener = web.tls_listener
    assert listener is not None
    socks = []
    try:
        for i in range(10):  # 10 addresses x 6: 60 attempts, 40 handshakes at most
            socks += stalled(web.port, f"127.0.1.{i + 1}", 6)
        await until(lambda: listener.handshakes + listener.refused == 60)
        assert listener.handshakes == 40 and listener.refused == 20
        assert listener.connections <= LIMITS.tls_max_connections
    finally:
        for s in socks:
            s.close()
    await until(lambda: listener.handshakes == 0 and listener.connections == 0, 10)
    assert await hello(web, pki) == 200


async def test_garbage_instead_of_a_handshake(web: WebServer, pki: Pki) -> None:
    listener = web.tls_listener
    assert listener is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
    async with asyncio.timeout(5):
        rest = await reader.read()
    writer.close()
    assert b"hello" not in rest  # no HTTP answer; at most a TLS alert
    await until(lambda: listener.failed_handshakes == 1 and listener.connections == 0)
    assert await hello(web, pki) == 200


async def test_served_connections_are_counted_until_they_close(web: WebServer, pki: Pki
                                                               ) -> None:
    listener = web.tls_listener
    assert listener is not None
    for _ in range(5):
        assert await hello(web, pki) == 200
    await until(lambda: listener.connections == 0)
    trust = ssl.create_default_context(cafile=str(pki.path("root.pem")))
    async with httpx.AsyncClient(base_url=web.url, verify=trust, timeout=5) as c:
        assert (await c.get("/hello")).status_code == 200
        assert listener.connections == 1  # kept alive between requests
    await until(lambda: listener.connections == 0)
