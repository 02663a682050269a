"""``/api/firmware/images`` over real sockets: raw-body upload under its own limit,
declared size and hash checked, cut-off uploads leaving nothing, list, get and delete."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .stack import TOKEN, FirmwareStack, firmware_stack

IMAGE = os.urandom(300_000)
SHA = hashlib.sha256(IMAGE).hexdigest()


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[FirmwareStack]:
    async with firmware_stack(tmp_path, store="sqlite", firmware_max_image=1 << 20,
                              http_max_body=64 << 10) as st:
        yield st


async def upload(s: FirmwareStack, data: bytes = IMAGE, **params: object) -> tuple[int, dict]:
    query = {"name": "app", "version": "1.2.0", **params}
    r = await s.http.post("/api/firmware/images", params=query, content=data)
    return r.status_code, r.json()


async def test_upload_list_get_delete(s: FirmwareStack, tmp_path: Path) -> None:
    # Larger than http_max_body: the upload route has a limit of its own.
    code, body = await upload(s, device_types="sensor,gateway", sha256=SHA)
    assert code == 201, body
    assert body["sha256"] == SHA and body["size"] == len(IMAGE)
    assert body["device_types"] == ["sensor", "gateway"]
    assert (tmp_path / "firmware" / f"{SHA}.bin").read_bytes() == IMAGE
    code, again = await upload(s)
    assert code == 200 and again == body
    assert (await s.http.get("/api/firmware/images")).json() == [body]
    assert (await s.http.get(f"/api/firmware/images/{SHA}")).json() == body
    r = await s.http.get(f"/api/firmware/images/{'0' * 64}")
    assert r.status_code == 404
    r = await s.http.get("/api/firmware/images/not-a-hash")
    assert r.status_code == 400 and "64 lower-case hex" in r.json()["detail"]
    r = await s.http.delete(f"/api/firmware/images/{SHA}")
    assert r.status_code == 200
    assert (await s.http.get("/api/firmware/images")).json() == []
    assert list((tmp_path / "firmware").iterdir()) == []


@pytest.mark.parametrize(("params", "data", "status", "detail"), [
    ({"sha256": "f" * 64}, IMAGE, 400, f"hash to sha256 {SHA}"),
    ({"size": len(IMAGE) + 5}, IMAGE, 400, "declared"),
    ({"name": ""}, IMAGE, 400, "name must be"),
    ({"sha256": "abc"}, IMAGE, 400, "64 lower-case hex"),
    ({}, os.urandom((1 << 20) + 1), 413, "larger than 1048576 bytes"),
    ({"size": 5 << 20}, b"x", 413, "larger than 1048576 bytes"),
])
async def test_bad_uploads(s: FirmwareStack, tmp_path: Path, params: dict[str, object],
                           data: bytes, status: int, detail: str) -> None:
    code, body = await upload(s, data, **params)
    assert code == status and detail in body["detail"], body
    assert list((tmp_path / "firmware").iterdir()) == []
    assert (await s.http.get("/api/firmware/images")).json() == []


async def test_upload_cut_off_midway_leaves_nothing(s: FirmwareStack, tmp_path: Path) -> None:
    host, port = "127.0.0.1", s.web.port
    _, writer = await asyncio.open_connection(host, port)
    writer.write((f"POST /api/firmware/images?name=app&version=1 HTTP/1.1\r\n"
                  f"Host: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Length: {len(IMAGE)}\r\n\r\n").encode() + IMAGE[:100_000])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    for _ in range(100):
        if not list((tmp_path / "firmware").iterdir()):
            break
        await asyncio.sleep(0.05)
    assert list((tmp_path / "firmware").iterdir()) == []
    assert (await s.http.get("/api/firmware/images")).json() == []


async def test_anonymous_upload_never_read(s: FirmwareStack) -> None:
    r = await s.http.post("/api/firmware/images", params={"name": "a", "version": "1"},
                          content=IMAGE, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert (await s.http.get("/api/firmware/images")).json() == []
