"""The client library's firmware download (Object 5 pull): block by block over CoAP and by
ranges over HTTP, resumed where it stopped when blocks or the connection are lost, started
over when the image changes, and failing with the right Update Result."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.client.control import DownloadError
from aiolwm2m.client.firmware_download import download, parse_response_head
from aiolwm2m.client.objects.firmware import (
    CONNECTION_LOST,
    INVALID_URI,
    NOT_ENOUGH_FLASH,
    UNSUPPORTED_PROTOCOL,
)
from aiolwm2m.coap.block import BlockValue
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

IMAGE = os.urandom(40_000)
FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=1,
                              response_timeout=3.0)


class BlockImage(Resource):
    """Serves ``IMAGE`` in the blocks asked for; ``stall`` block numbers are not answered
    the first time they are asked (a lost exchange), ``change_at`` swaps the image (and its
    ETag) once that block was asked for."""

    def __init__(self, stall: set[int] = frozenset(), change_at: int | None = None, *,
                 silent: bool = False) -> None:
        super().__init__()
        self.image = IMAGE
        self.etag = b"one"
        self.stall = set(stall)
        self.silent = silent
        self.change_at = change_at
        self.asked: list[int] = []

    def render_get(self, request: Message) -> Message | Awaitable[Message]:
        block = request.block2 or BlockValue(0, False, 6)
        self.asked.append(block.num)
        if block.num in self.stall or self.silent:
            self.stall.discard(block.num)
            return asyncio.get_running_loop().create_future()  # never answered
        if self.change_at is not None and block.num == self.change_at:
            self.change_at = None
            self.image, self.etag = IMAGE[::-1], b"two"
        size = block.size
        start = block.num * size
        response = request.response(Code.CONTENT, self.image[start:start + size], 42)
        response.etag = self.etag
        response.block2 = BlockValue(block.num, start + size < len(self.image), block.szx)
        response.size2 = len(self.image)
        return response


@pytest.fixture
async def client() -> AsyncIterator[LwM2MClient]:
    # Registers nowhere (no server at port 9): only its endpoint is used here.
    c = LwM2MClient(ClientConfig.development("dev-1", "coap://[::1]:9", host="::1",
                                             transmission=FAST, request_timeout=1.0))
    await c.start()
    yield c
    await c.stop(deregister=False)


async def image_server(resource: Resource) -> UdpEndpoint:
    site = Site()
    site.add("fw/image", resource)
    return await UdpEndpoint.create("::1", 0, site=site)


async def test_coap_download_resumes_after_lost_exchanges(client: LwM2MClient) -> None:
    resource = BlockImage(stall={5, 30})
    server = await image_server(resource)
    try:
        data = await download(client, f"coap://[::1]:{server.port}/fw/image", 1 << 20,
                              retry_delay=0.05)
    finally:
        await server.close()
    assert data == IMAGE
    blocks = -(-len(IMAGE) // 1024)
    # Each lost block is asked again, and nothing before it: no block is fetched twice
    # except the two lost ones.
    assert sorted(resource.asked) == sorted([*range(blocks), 5, 30])


async def test_coap_download_starts_over_when_the_image_changes(client: LwM2MClient) -> None:
    resource = BlockImage(change_at=10)
    server = await image_server(resource)
    try:
        data = await download(client, f"coap://[::1]:{server.port}/fw/image", 1 << 20)
    finally:
        await server.close()
    assert data == IMAGE[::-1]
    assert resource.asked.count(0) == 2


async def test_coap_download_failures(client: LwM2MClient) -> None:
    server = await image_server(BlockImage(silent=True))
    try:
        with pytest.raises(DownloadError) as lost:
            await download(client, f"coap://[::1]:{server.port}/fw/image", 1 << 20,
                           attempts=2, retry_delay=0.05)
    finally:
        await server.close()
    server = await image_server(BlockImage())
    try:
        with pytest.raises(DownloadError) as missing:
            await download(client, f"coap://[::1]:{server.port}/fw/other", 1 << 20)
        with pytest.raises(DownloadError) as large:
            await download(client, f"coap://[::1]:{server.port}/fw/image", 1000)
    finally:
        await server.close()
    assert lost.value.result == CONNECTION_LOST
    assert missing.value.result == INVALID_URI
    assert large.value.result == NOT_ENOUGH_FLASH
    with pytest.raises(DownloadError) as scheme:
        await download(client, "ftp://example.com/x", 1 << 20)
    assert scheme.value.result == UNSUPPORTED_PROTOCOL
    with pytest.raises(DownloadError) as nocred:
        await download(client, "coaps://[::1]:5684/fw/x", 1 << 20)
    assert nocred.value.result == UNSUPPORTED_PROTOCOL  # no coaps account to fetch with


class CuttingHttpServer:
    """Sends half the image, then drops the connection; answers a Range request with the
    rest (206). Records the requests' heads."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        self.heads.append(head)
        if "/missing" in head:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        elif "Range: bytes=" not in head:
            writer.write(b"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\n"
                         + f"Content-Length: {len(IMAGE)}\r\n\r\n".encode()
                         + IMAGE[:len(IMAGE) // 2])
        else:
            start = int(head.split("Range: bytes=")[1].split("-")[0])
            rest = IMAGE[start:]
            writer.write(f"HTTP/1.1 206 Partial Content\r\nETag: \"e1\"\r\nContent-Range: "
                         f"bytes {start}-{len(IMAGE) - 1}/{len(IMAGE)}\r\nTransfer-Encoding: "
                         f"chunked\r\n\r\n{len(rest):x}\r\n".encode() + rest + b"\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_http_download_resumes_with_a_range(client: LwM2MClient) -> None:
    http = CuttingHttpServer()
    async with http as port:
        data = await download(client, f"http://127.0.0.1:{port}/fw/x", 1 << 20,
                              retry_delay=0.05)
        with pytest.raises(DownloadError) as missing:
            await download(client, f"http://127.0.0.1:{port}/missing", 1 << 20)
    assert data == IMAGE
    assert len(http.heads) == 3
    assert f"Range: bytes={len(IMAGE) // 2}-" in http.heads[1]
    assert 'If-Range: "e1"' in http.heads[1]
    assert missing.value.result == INVALID_URI
    with pytest.raises(DownloadError) as refused:
        await download(client, f"http://127.0.0.1:{port}/fw/x", 1 << 20, attempts=2,
                       retry_delay=0.01)
    assert refused.value.result == CONNECTION_LOST


@pytest.mark.parametrize(("head", "expected"), [
    (b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 1-2/3\r\nX:  y \r\n\r\n",
     (206, {"content-range": "bytes 1-2/3", "x": "y"})),
    (b"HTTP/1.0 200\r\n\r\n", (200, {})),
])
def test_parse_response_head(head: bytes, expected: object) -> None:
    assert parse_response_head(head) == expected


@pytest.mark.parametrize("head", [b"SIP/2.0 200 OK\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 5000 + b"\r\n"])
def test_parse_response_head_refuses(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response_head(head)
