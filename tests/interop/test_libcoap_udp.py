"""libcoap's command-line peers against our UDP endpoint, in both roles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.udp import UdpEndpoint

from .conftest import HELLO, background, free_port, interop_site, require, resource, run

pytestmark = pytest.mark.interop
LARGE = bytes((i * 31 + 7) & 0xFF for i in range(4096))


@pytest.fixture
async def server() -> AsyncIterator[tuple[UdpEndpoint, dict[str, object]]]:
    site = interop_site(LARGE)
    res: dict[str, object] = {n: resource(site, n) for n in ("hello", "store", "large",
                                                             "counter")}
    ep = await UdpEndpoint.create("127.0.0.1", 0, site=site)
    yield ep, res
    await ep.close()


async def test_get(server: tuple[UdpEndpoint, dict[str, object]]) -> None:
    client = require("coap-client-openssl")
    ep, _ = server
    rc, out, err = await run(client, "-B", "5", "-m", "get", f"coap://127.0.0.1:{ep.port}/hello")
    assert rc == 0, err
    assert out.strip() == HELLO


async def test_non_get_and_404(server: tuple[UdpEndpoint, dict[str, object]]) -> None:
    client = require("coap-client-openssl")
    ep, _ = server
    rc, out, _ = await run(client, "-B", "5", "-N", f"coap://127.0.0.1:{ep.port}/hello")
    assert rc == 0 and out.strip() == HELLO
    _rc, out, err = await run(client, "-B", "5", f"coap://127.0.0.1:{ep.port}/missing")
    assert b"4.04" in out + err


async def test_put_4k_via_block1(server: tuple[UdpEndpoint, dict[str, object]],
                                 tmp_path: Path) -> None:
    client = require("coap-client-openssl")
    ep, res = server
    body = bytes(range(256)) * 16
    src = tmp_path / "body.bin"
    src.write_bytes(body)
    rc, _, err = await run(client, "-B", "10", "-m", "put", "-b", "256", "-t", "42", "-f",
                           str(src), f"coap://127.0.0.1:{ep.port}/store")
    assert rc == 0, err
    store = res["store"]
    assert isinstance(store, StoreResource)
    assert store.data == body


async def test_get_4k_via_block2(server: tuple[UdpEndpoint, dict[str, object]],
                                 tmp_path: Path) -> None:
    client = require("coap-client-openssl")
    ep, _ = server
    dst = tmp_path / "out.bin"
    for size in ("64", "1024"):
        rc, _, err = await run(client, "-B", "10", "-b", size, "-o", str(dst),
                               f"coap://127.0.0.1:{ep.port}/large")
        assert rc == 0, err
        assert dst.read_bytes() == LARGE


async def test_observe_three_notifications(server: tuple[UdpEndpoint, dict[str, object]]
                                           ) -> None:
    client = require("coap-client-openssl")
    ep, res = server
    counter = res["counter"]
    assert isinstance(counter, CounterResource)

    async def tick() -> None:
        await asyncio.sleep(0.5)
        for i in range(1, 6):
            counter.value = i * 10
            counter.notify()
            await asyncio.sleep(0.3)

    ticker = asyncio.create_task(tick())
    _rc, out, err = await run(client, "-B", "10", "-w", "-s", "3",
                             f"coap://127.0.0.1:{ep.port}/counter")
    await ticker
    values = [int(v) for v in out.split()]
    assert values[0] == 0, (out, err)
    assert values[1:4] == [10, 20, 30]
    # libcoap deregisters at the end of -s; our server must have forgotten it.
    await asyncio.sleep(0.2)
    assert len(ep.dispatcher.observers) == 0


async def test_our_client_against_libcoap_server(tmp_path: Path) -> None:
    server_bin = require("coap-server-openssl")
    port = free_port()
    async with background(server_bin, "-A", "127.0.0.1", "-p", str(port), "-d", "10"):
        async with await UdpEndpoint.create("127.0.0.1", 0) as ep:
            remote = ("127.0.0.1", port)
            resp = await ep.request(Message.request(Code.GET, "/"), remote)
            assert resp.code == Code.CONTENT and b"libcoap" in resp.payload
            resp = await ep.request(Message.request(Code.GET, "/.well-known/core"), remote)
            targets = [link.target for link in parse_link_format(resp.payload)]
            assert "/time" in targets
            body = bytes(range(256)) * 16
            resp = await ep.request(Message.request(Code.PUT, "/example_data", payload=body,
                                                    content_format=42), remote, block_szx=4)
            assert resp.code in (Code.CHANGED, Code.CREATED), resp
            resp = await ep.request(Message.request(Code.GET, "/example_data"), remote)
            assert resp.payload == body
            sub = await ep.observe(Message.request(Code.GET, "/time"), remote)
            first = await sub.first
            assert first.code == Code.CONTENT and first.observe is not None
            notes = []
            async for note in sub:
                notes.append(note)
                if len(notes) == 2:
                    break
            assert all(n.observe is not None for n in notes)
            await sub.cancel()
            rtt = await ep.ping(remote)
            assert rtt < 1.0
