"""The image store: content addressed, streamed uploads checked against their declared size
and hash, and nothing left behind by an upload that fails, is cut off, or by a crash."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.firmware.errors import BadImage, Conflict, ImageTooLarge
from aiolwm2m.firmware.images import DirectoryImageStore, ImageStore, MemoryImageStore

IMAGE = os.urandom(100_000)
SHA = hashlib.sha256(IMAGE).hexdigest()


async def chunks(data: bytes, size: int = 8192, *, fail_at: int | None = None
                 ) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if fail_at is not None and i >= fail_at:
            raise ConnectionResetError("client went away")
        yield data[i:i + size]
        await asyncio.sleep(0)


@pytest.fixture(params=["directory", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ImageStore:
    if request.param == "memory":
        return MemoryImageStore()
    return DirectoryImageStore.open(tmp_path / "fw")


def leftovers(tmp_path: Path) -> list[str]:
    directory = tmp_path / "fw"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_upload_is_content_addressed(store: ImageStore) -> None:
    image, created = await store.add(chunks(IMAGE), name="app", version="1.2.0",
                                     device_types=["sensor", " gw ", ""], size=len(IMAGE),
                                     sha256=SHA, max_size=1 << 20, now=10.0)
    assert created and image.sha256 == SHA and image.size == len(IMAGE)
    assert image.device_types == ("sensor", "gw") and image.uploaded_at == 10.0
    assert await store.content(SHA) == IMAGE
    # The same bytes again are the same image; under another name they are refused.
    again, created = await store.add(chunks(IMAGE), name="app", version="1.2.0",
                                     max_size=1 << 20, now=11.0)
    assert not created and again == image
    with pytest.raises(Conflict, match=r"already stored as app 1\.2\.0"):
        await store.add(chunks(IMAGE), name="other", version="9", max_size=1 << 20, now=12.0)
    assert store.all() == [image]
    assert await store.remove(SHA) == image
    assert store.get(SHA) is None and await store.remove(SHA) is None


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"size": len(IMAGE) + 1}, BadImage, f"received {len(IMAGE)} bytes, {len(IMAGE) + 1} "
     "declared"),
    ({"size": len(IMAGE) - 1}, BadImage, "more than the declared"),
    ({"sha256": "0" * 64}, BadImage, f"hash to sha256 {SHA}, not the declared 0000"),
    ({"sha256": "XYZ"}, BadImage, "64 lower-case hex digits"),
    ({"max_size": len(IMAGE) - 1}, ImageTooLarge, f"larger than {len(IMAGE) - 1} bytes"),
    ({"size": 10 << 20}, ImageTooLarge, "larger than"),
])
async def test_images_that_are_not_what_they_claim(store: ImageStore, tmp_path: Path,
                                                   kwargs: dict[str, object], error: type,
                                                   message: str) -> None:
    args: dict[str, object] = {"max_size": 1 << 20, **kwargs}
    with pytest.raises(error, match=message):
        await store.add(chunks(IMAGE), name="app", version="1", now=0.0,
                        **args)  # type: ignore[arg-type]
    assert store.all() == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize(("name", "version", "message"), [
    ("", "1", "name must be"), ("a" * 201, "1", "name must be"), ("app", "", "version must"),
    ("app\n", "1\x00", "version must")])
async def test_bad_metadata(store: ImageStore, name: str, version: str, message: str) -> None:
    with pytest.raises(BadImage, match=message):
        await store.add(chunks(IMAGE), name=name, version=version, max_size=1 << 20, now=0.0)


async def test_empty_image_refused(store: ImageStore) -> None:
    with pytest.raises(BadImage, match="empty"):
        await store.add(chunks(b""), name="a", version="1", max_size=1 << 20, now=0.0)


async def test_interrupted_upload_leaves_nothing(store: ImageStore, tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError):
        await store.add(chunks(IMAGE, fail_at=50_000), name="app", version="1",
                        size=len(IMAGE), max_size=1 << 20, now=0.0)
    assert store.all() == [] and leftovers(tmp_path) == []
    # A cancelled upload (the request's task) too.
    task = asyncio.ensure_future(store.add(chunks(IMAGE, 1000), name="app", version="1",
                                           max_size=1 << 20, now=0.0))
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.all() == [] and leftovers(tmp_path) == []


async def test_directory_store_survives_a_restart_and_cleans_up_after_a_crash(
        tmp_path: Path) -> None:
    store = DirectoryImageStore.open(tmp_path / "fw")
    image, _ = await store.add(chunks(IMAGE), name="app", version="2", max_size=1 << 20,
                               now=5.0)
    # What a crash can leave: a half-written upload, an image whose removal was cut short
    # after its metadata went, metadata whose image is missing.
    (tmp_path / "fw" / ".upload-0123456789abcdef").write_bytes(IMAGE[:1000])
    (tmp_path / "fw" / f"{'1' * 64}.bin").write_bytes(b"orphan")
    (tmp_path / "fw" / f"{'2' * 64}.json").write_text(
        '{"sha256": "' + "2" * 64 + '", "name": "x", "version": "1", "size": 3}')
    reopened = DirectoryImageStore.open(tmp_path / "fw")
    assert reopened.all() == [image]
    assert await reopened.content(image.sha256) == IMAGE
    assert leftovers(tmp_path) == sorted([f"{'2' * 64}.json", f"{SHA}.bin", f"{SHA}.json"])
