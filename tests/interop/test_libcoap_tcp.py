"""libcoap's command-line peers over coap+tcp and coaps+tcp (PSK), in both roles."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import InMemoryCredentialLookup, PskCredentials, ServerCredentials
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity, TlsServerSecurity
from tests.transport.request_counter import count_requests

from .conftest import HELLO, background, interop_site, require, run

pytestmark = pytest.mark.interop
LARGE = bytes((i * 31 + 7) & 0xFF for i in range(100_000))
IDENTITY, KEY = b"libcoap-dev", b"tcp-secret-key"




@pytest.fixture
async def server() -> AsyncIterator[TcpEndpoint]:
    ep = await TcpEndpoint.create("127.0.0.1", 0, site=interop_site(LARGE))
    yield ep
    await ep.close()


async def test_get_put_404(server: TcpEndpoint, tmp_path: Path) -> None:
    client = require("coap-client-openssl")
    base = f"coap+tcp://127.0.0.1:{server.port}"
    rc, out, err = await run(client, "-B", "5", f"{base}/hello")
    assert rc == 0, err
    assert out.strip() == HELLO
    _rc, out, err = await run(client, "-B", "5", f"{base}/missing")
    assert b"4.04" in out + err
    src = tmp_path / "body.bin"
    src.write_bytes(LARGE)
    seen = count_requests(server)
    rc, _, err = await run(client, "-B", "10", "-m", "put", "-t", "42", "-f", str(src),
                           f"{base}/store")
    assert rc == 0, err
    store = server.site.find(Message.request(Code.GET, "/store"))
    assert isinstance(store, StoreResource) and store.data == LARGE
    # libcoap sends the 100 KB as BERT blocks sized to our 64 KiB Max-Message-Size.
    assert len(seen) == 2 and all(m.block1 is not None and m.block1.szx == 7 for m in seen)


@pytest.mark.parametrize("args, requests", [
    ((), 1),                      # fits libcoap's 8 MB Max-Message-Size: one message
    (("-b", "1024"), 98),         # the client asks for 1024-byte blocks
    (("-b", "64"), 1563),         # ... or small ones
    (("-X", "16384"), 7),         # libcoap accepts 16 KiB: we send BERT blocks of 15 KiB
])
async def test_get_100k(server: TcpEndpoint, tmp_path: Path, args: tuple[str, ...],
                        requests: int) -> None:
    client = require("coap-client-openssl")
    dst = tmp_path / "out.bin"
    seen = count_requests(server)
    rc, _, err = await run(client, "-B", "20", *args, "-o", str(dst),
                           f"coap+tcp://127.0.0.1:{server.port}/large")
    assert rc == 0, err
    assert dst.read_bytes() == LARGE
    assert len(seen) == requests


async def test_observe(server: TcpEndpoint) -> None:
    client = require("coap-client-openssl")
    counter = server.site.find(Message.request(Code.GET, "/counter"))
    assert isinstance(counter, CounterResource)

    async def tick() -> None:
        for i in range(1, 6):
            await asyncio.sleep(0.25)
            counter.value = i
            counter.notify()

    task = asyncio.create_task(tick())
    rc, out, err = await run(client, "-B", "3", "-w", "-s", "2",
                             f"coap+tcp://127.0.0.1:{server.port}/counter")
    await task
    assert rc == 0, err
    values = out.split()
    assert values[0] == b"0" and b"3" in values and len(values) >= 4
    await asyncio.sleep(0.1)
    assert len(server.dispatcher.observers) == 0 and server.connections() == []


async def test_coaps_tcp_psk(tmp_path: Path) -> None:
    client = require("coap-client-openssl")
    security = TlsServerSecurity(ServerCredentials(InMemoryCredentialLookup({IDENTITY: KEY})))
    server = await TcpEndpoint.create("127.0.0.1", 0, site=interop_site(LARGE), tls_server=security)
    try:
        base = f"coaps+tcp://127.0.0.1:{server.port}"
        rc, out, err = await run(client, "-B", "5", "-u", IDENTITY.decode(), "-k", KEY.decode(),
                                 f"{base}/hello")
        assert rc == 0, err
        assert out.strip() == HELLO
        dst = tmp_path / "out.bin"
        rc, _, err = await run(client, "-B", "10", "-u", IDENTITY.decode(), "-k", KEY.decode(),
                               "-X", "16384", "-o", str(dst), f"{base}/large")
        assert rc == 0, err
        assert dst.read_bytes() == LARGE
        # A wrong key gets nothing (libcoap still exits with 0).
        _rc, out, _err = await run(client, "-B", "3", "-u", IDENTITY.decode(), "-k", "nope",
                                   f"{base}/hello")
        assert b"hello" not in out
    finally:
        await server.close()


def free_port_pair() -> int:
    """A port p with p and p+1 free for TCP and UDP (libcoap's server takes p+1 for TLS)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port: int = t.getsockname()[1]
        if port > 65000:
            continue
        try:
            for p in (port, port + 1):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


@pytest.fixture
async def libcoap_server() -> AsyncIterator[int]:
    exe = require("coap-server-openssl")
    port = free_port_pair()
    async with background(exe, "-A", "127.0.0.1", "-p", str(port), "-k", KEY.decode()):
        yield port


@pytest.mark.parametrize("tls", [False, True])
async def test_our_client_against_libcoap_server(libcoap_server: int, tls: bool) -> None:
    port = libcoap_server + 1 if tls else libcoap_server
    client = await TcpEndpoint.create(
        listen=False,
        tls_client=TlsClientSecurity(PskCredentials(IDENTITY, KEY)) if tls else None)
    try:
        remote = ("127.0.0.1", port)
        r = await client.request(Message.request(Code.GET, "/"), remote)
        assert r.code == Code.CONTENT and b"libcoap" in r.payload
        r = await client.request(Message.request(Code.PUT, "/example_data", payload=LARGE,
                                                 content_format=42), remote)
        assert r.code in (Code.CREATED, Code.CHANGED)
        r = await client.request(Message.request(Code.GET, "/example_data"), remote)
        assert r.payload == LARGE
        sub = await client.observe(Message.request(Code.GET, "/time"), remote)
        assert sub.first.result().code == Code.CONTENT
        note = await asyncio.wait_for(sub.__anext__(), 5)
        assert note.code == Code.CONTENT and note.observe is not None
        await sub.cancel()
        assert await client.ping(remote, timeout=3) < 1
    finally:
        await client.close()
