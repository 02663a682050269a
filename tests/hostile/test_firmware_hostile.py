"""Attacks on firmware delivery and upload, with bounded counts on loopback: token guessing
and forged-source fetches over NoSec UDP get small fixed answers (no amplification, no 1 KiB
block to anyone but the device), a DTLS peer with other credentials cannot fetch another
device's image, HTTP abuse of /fw is answered cheaply, and oversized or anonymous uploads
are refused before their body is read."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.client.endpoint import ClientDtlsEndpoint
from aiolwm2m.coap.amplification import ERROR_REPLY_SLACK
from aiolwm2m.coap.block import BlockValue
from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity
from aiolwm2m.transport.site import Site
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..transport.raw_peer import RawPeer

IMAGE = os.urandom(20_000)
TOKEN = "hostile-firmware-token"
KEY = bytes(range(16))


async def one_chunk() -> AsyncIterator[bytes]:
    yield IMAGE


class Stack:
    def __init__(self, server: LwM2MServer, firmware: FirmwareService, web: WebServer) -> None:
        self.server = server
        self.firmware = firmware
        self.web = web


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    server = LwM2MServer(ServerConfig(host="::", port=0, coaps_port=0, store="memory",
                                      data_dir=tmp_path, firmware_max_image=1 << 20))
    firmware = FirmwareService(server)
    await server.start()
    await firmware.start()
    web = WebServer(create_app(server, [TOKEN], firmware=firmware), "127.0.0.1", 0)
    await web.start()
    yield Stack(server, firmware, web)
    await web.stop()
    await firmware.stop()
    await server.stop()


async def device(stack: Stack, **kwargs: object) -> LwM2MClient:
    uri = kwargs.pop("uri", f"coap://[::1]:{stack.server.port}")
    client = LwM2MClient(ClientConfig.development("dev-1", str(uri), host="::1",
                                                  **kwargs))  # type: ignore[arg-type]
    await client.start()
    await client.wait_registered(10)
    return client


async def offer(stack: Stack) -> str:
    image, _ = await stack.firmware.upload(one_chunk(), name="app", version="2")
    token = secrets.token_urlsafe(16)
    await stack.firmware.deliveries.open(token, "job", "dev-1", image)
    return token


def fetch(token: str, mid: int, num: int = 0) -> bytes:
    msg = Message(MessageType.CON, Code.GET, mid, b"\x01\x02")
    msg.uri_path = ("fw", token)
    msg.block2 = BlockValue(num, False, 6)
    return encode_udp(msg)


async def test_token_guessing_and_forged_sources_get_small_answers(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiolwm2m.server.refusals")
    client = await device(stack)
    try:
        token = await offer(stack)
        # Another host than the device's (127.0.0.1, the device is on ::1): whether it
        # guesses tokens or knows the right one, it gets a few bytes back, never a block.
        peer = await RawPeer.open("127.0.0.1")
        try:
            sizes = []
            for i in range(300):
                guess = token if i % 2 else secrets.token_urlsafe(16)
                request = fetch(guess, i + 1, num=i % 20)
                peer.send(request, ("127.0.0.1", stack.server.port))
                reply, _ = await asyncio.wait_for(peer.queue.get(), 5)
                assert decode_udp(reply).code == Code.NOT_FOUND
                sizes.append(len(reply) - len(request))
        finally:
            peer.close()
    finally:
        await client.stop(deregister=False)
    assert max(sizes) <= ERROR_REPLY_SLACK
    assert stack.firmware.deliveries.bytes_served == 0
    refused = stack.server.refusals.by_reason
    assert refused["firmware-unknown-token"] == 150 and refused["firmware-wrong-peer"] == 150
    # Logged, but summarised: a flood does not write a line per request.
    lines = [r for r in caplog.records if r.name == "aiolwm2m.server.refusals"]
    assert len(lines) <= 2 * 20 + 2


async def test_dtls_peer_with_other_credentials_cannot_fetch(stack: Stack) -> None:
    security = stack.server.stores.security
    await security.put(SecurityInfo("dev-1", psk_identity=b"dev-1-id", psk_key=KEY))
    await security.put(SecurityInfo("dev-2", psk_identity=b"dev-2-id", psk_key=KEY))
    client = await device(stack, uri=f"coaps://[::1]:{stack.server.port_of('dtls')}",
                          development_security=PskCredentials(b"dev-1-id", KEY))
    other = await ClientDtlsEndpoint.open("::1", 0, site=Site(well_known_core=False))
    try:
        token = await offer(stack)
        address = await other.secure(("::1", stack.server.port_of("dtls")),
                                     ClientSecurity(PskCredentials(b"dev-2-id", KEY)))
        msg = Message.request(Code.GET, ["fw", token])
        reply = await other.exchange(msg, address, timeout=5)
    finally:
        await other.close()
        await client.stop(deregister=False)
    assert reply.code == Code.NOT_FOUND and reply.payload == b"no such firmware"
    assert stack.server.refusals.by_reason["firmware-wrong-peer"] == 1
    assert stack.firmware.deliveries.bytes_served == 0


async def test_http_download_abuse_is_cheap(stack: Stack) -> None:
    client = await device(stack)
    try:
        token = await offer(stack)
        async with httpx.AsyncClient(base_url=stack.web.url, timeout=10) as http:
            for _ in range(100):
                r = await http.get(f"/fw/{secrets.token_urlsafe(16)}")
                assert r.status_code == 404 and len(r.content) < 64
            r = await http.get("/fw/" + "A" * 8000)
            assert r.status_code == 404 and len(r.content) < 64
            # Thousands of ranges: not a multipart answer, just the image once.
            r = await http.get(f"/fw/{token}",
                               headers={"Range": "bytes=" + ",".join(["0-0"] * 2000)})
            assert r.status_code == 200 and r.content == IMAGE
            r = await http.get(f"/fw/{token}", headers={"Range": "bytes=10-19"})
            assert r.status_code == 206 and r.content == IMAGE[10:20]
    finally:
        await client.stop(deregister=False)
    assert stack.server.refusals.by_reason["firmware-unknown-token"] == 101


async def test_uploads_refused_before_their_body(stack: Stack) -> None:
    host, port = "127.0.0.1", stack.web.port

    async def head_only(headers: str) -> bytes:
        """Send a request head announcing a large body, and read the answer without
        sending any of the body."""
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(("POST /api/firmware/images?name=a&version=1 HTTP/1.1\r\n"
                      f"Host: {host}\r\n{headers}\r\n").encode())
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        finally:
            writer.close()

    anonymous = await head_only("Content-Length: 104857600\r\n")
    assert anonymous.startswith(b"HTTP/1.1 401")
    too_large = await head_only(f"Authorization: Bearer {TOKEN}\r\n"
                                "Content-Length: 104857600\r\n")
    assert too_large.startswith(b"HTTP/1.1 413")

    # Without a length (chunked), the body is counted as it comes and cut at the limit.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield os.urandom(64 * 1024)

    async with httpx.AsyncClient(base_url=stack.web.url, timeout=20) as http:
        r = await http.post("/api/firmware/images", params={"name": "a", "version": "1"},
                            content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 413
        assert (await http.get("/api/firmware/images",
                               headers={"Authorization": f"Bearer {TOKEN}"})).json() == []
