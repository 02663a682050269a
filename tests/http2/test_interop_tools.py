"""Third-party HTTP/2 peers: curl registers, updates and de-registers a device with
nothing but HTTP/2 prior knowledge; nghttp holds the downlink stream and gets the server's
request in an envelope, which curl then answers (with a POST per answer, and with a whole
answer sequence in one POST)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.http2.answers import Answer, decode_rejection, encode_answers
from aiolwm2m.http2.bearer import bearer_token
from aiolwm2m.http2.envelope import DownlinkRequest, EnvelopeReader, SequenceSplitter
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Awake
from aiolwm2m.store.records import SecurityInfo

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("curl") is None or shutil.which("nghttp") is None,
                       reason="curl and nghttp (Debian nghttp2-client) are needed"),
]
KEY = b"interop-secret-0"


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("ng-dev", psk_identity=b"ng-dev",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


async def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """Run curl with HTTP/2 prior knowledge; (status, headers, body)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--http2-prior-knowledge", "-D", "-", "--max-time", "10", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/2 "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_curl_registers_updates_and_deregisters(server: LwM2MServer) -> None:
    base = f"http://127.0.0.1:{server.port_of('http2')}"
    status, headers, _ = await curl(
        "-X", "POST", "-H", "content-type: application/link-format",
        "--data-binary", "</1/0>,</3/0>", f"{base}/rd?ep=curl-dev&lt=300&lwm2m=1.1&b=H")
    assert status == 201
    location = headers["location"]
    reg = server.registrations["curl-dev"]
    assert location == f"/rd/{reg.id}" and reg.binding == "H" and reg.transport == "http2"
    # Each curl command is a new connection: a NoSec Update from another address is
    # refused as over CoAP (the registration is bound to its address).
    status, _, body = await curl("-X", "POST", f"{base}{location}?lt=600")
    assert status == 404 and body == b"no such registration"
    # With a bearer token the registration is bound to the principal instead, and any
    # connection presenting it may update and de-register.
    auth = f"authorization: Bearer {bearer_token(b'ng-dev', KEY)}"
    status, headers, _ = await curl(
        "-X", "POST", "-H", auth, "-H", "content-type: application/link-format",
        "-H", "lwm2m-message-id: curl-register-1", "--data-binary", "</3/0>",
        f"{base}/rd?ep=ng-dev&lt=300&lwm2m=1.1&b=H")
    assert status == 201 and headers["lwm2m-message-id"] == "curl-register-1"
    location = headers["location"]
    status, _, _ = await curl("-X", "POST", "-H", auth, f"{base}{location}?lt=600")
    assert status == 204
    assert server.registrations["ng-dev"].lifetime == 600
    status, _, _ = await curl("-X", "DELETE", "-H", auth, f"{base}{location}")
    assert status == 205
    assert "ng-dev" not in server.registrations


async def test_nghttp_holds_the_downlink_stream(server: LwM2MServer, tmp_path: Path
                                                ) -> None:
    base = f"http://127.0.0.1:{server.port_of('http2')}"
    auth = f"authorization: Bearer {bearer_token(b'ng-dev', KEY)}"
    status, headers, _ = await curl(
        "-X", "POST", "-H", auth, "-H", "content-type: application/link-format",
        "--data-binary", "</3/0>", f"{base}/rd?ep=ng-dev&lt=300&lwm2m=1.1&b=H")
    assert status == 201
    location = headers["location"]
    assert server.registrations["ng-dev"].identity == "psk:ng-dev"
    events = server.events.stream()
    nghttp = await asyncio.create_subprocess_exec(
        "stdbuf", "-o0", "nghttp", "-t", "20", "-H", auth, f"{base}{location}/requests",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert isinstance(await events.until(Awake, timeout=5), Awake)
        read = asyncio.create_task(server.read("ng-dev", "/3/0/0", format=ContentFormat.TEXT,
                                               timeout=10))
        assert nghttp.stdout is not None
        reader = EnvelopeReader()
        envelopes: list[list[object]] = []
        while not envelopes:
            envelopes += reader.feed(await asyncio.wait_for(nghttp.stdout.read(4096), 5))
        (request,) = envelopes[0]
        assert request.path == "/3/0/0" and request.method == 1  # type: ignore[attr-defined]
        status, _, _ = await curl(
            "-X", "POST", "-H", auth, "-H", "lwm2m-status: 200",
            "-H", "content-type: text/plain", "--data-binary", "ACME Corp",
            f"{base}{location}/responses/{request.identity}")  # type: ignore[attr-defined]
        assert status == 204
        response = await read
        assert response.content.value == "ACME Corp"  # type: ignore[union-attr]
        # Answering again: the request is gone (404, nothing delivered twice).
        status, _, _ = await curl(
            "-X", "POST", "-H", auth, "-H", "lwm2m-status: 200",
            f"{base}{location}/responses/{request.identity}")  # type: ignore[attr-defined]
        assert status == 404
        # The answer-stream form, whole in one request: 200, the rejections as its body.
        read = asyncio.create_task(server.read("ng-dev", "/3/0/1", format=ContentFormat.TEXT,
                                               timeout=10))
        batches: list[list[DownlinkRequest]] = []
        while not batches:
            batches += reader.feed(await asyncio.wait_for(nghttp.stdout.read(4096), 5))
        (asked,) = batches[0]
        answers = tmp_path / "answers.cbor-seq"
        answers.write_bytes(encode_answers([
            Answer(asked.identity, 200, 0, None, b"Model X"),
            Answer("nobody", 200)]))
        status, headers, body = await curl(
            "-X", "POST", "-H", auth, "-H", "content-type: application/cbor-seq",
            "--data-binary", f"@{answers}", f"{base}{location}/responses")
        assert (status, headers["content-type"]) == (200, "application/cbor-seq")
        assert [decode_rejection(i).identity for i in SequenceSplitter().feed(body)] == [
            "nobody"]
        assert (await read).content.value == "Model X"  # type: ignore[union-attr]
        status, _, _ = await curl("-X", "DELETE", "-H", auth, f"{base}{location}")
        assert status == 205
        # De-registering ends the downlink stream (with the reason in a trailer).
        await asyncio.wait_for(nghttp.wait(), 5)
        assert nghttp.returncode == 0
    finally:
        if nghttp.returncode is None:
            nghttp.kill()
            await nghttp.wait()
