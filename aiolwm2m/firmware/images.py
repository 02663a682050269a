"""Firmware images, content addressed: stored by the SHA-256 of their bytes.

An upload streams in: it is counted against the size limit and hashed as it arrives, and
checked against the size and hash the uploader declared (if it did) before it is kept. An
upload that fails or is interrupted midway leaves nothing behind: the bytes go to a
temporary file that is removed, and a server that died during an upload removes such files
when it opens the store again. The same bytes uploaded twice are one image.

:class:`DirectoryImageStore` keeps ``<sha256>.bin`` and ``<sha256>.json`` (the metadata)
in a directory; :class:`MemoryImageStore` keeps nothing on disk (``store="memory"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncIterable, Sequence
from pathlib import Path
from typing import IO, Protocol

from .errors import BadImage, Conflict, ImageTooLarge
from .records import FirmwareImage

log = logging.getLogger(__name__)

SHA256_TEXT = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".upload-"
#: Metadata bounds: what the UI and the API show must stay readable and small.
MAX_NAME = 200
MAX_VERSION = 100
MAX_DEVICE_TYPES = 64


def check_metadata(name: str, version: str, device_types: Sequence[str],
                   sha256: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """The cleaned metadata of an upload, or BadImage saying what is wrong with it."""
    name, version = name.strip(), version.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise BadImage(f"name must be 1 to {MAX_NAME} printable characters")
    if not version or len(version) > MAX_VERSION or not version.isprintable():
        raise BadImage(f"version must be 1 to {MAX_VERSION} printable characters")
    types = tuple(dict.fromkeys(t.strip() for t in device_types if t.strip()))
    if len(types) > MAX_DEVICE_TYPES or any(len(t) > MAX_NAME or not t.isprintable()
                                            for t in types):
        raise BadImage(f"at most {MAX_DEVICE_TYPES} device types of at most {MAX_NAME} "
                       "printable characters each")
    if sha256 is not None and not SHA256_TEXT.fullmatch(sha256):
        raise BadImage("sha256 must be 64 lower-case hex digits")
    return name, version, types


class ImageStore(Protocol):
    def get(self, sha256: str) -> FirmwareImage | None: ...

    def all(self) -> list[FirmwareImage]:
        """Every image, newest first."""

    async def add(self, chunks: AsyncIterable[bytes], *, name: str, version: str,
                  device_types: Sequence[str] = (), size: int | None = None,
                  sha256: str | None = None, max_size: int, now: float
                  ) -> tuple[FirmwareImage, bool]:
        """Store an upload; returns the image and whether it is new (the same bytes with
        the same metadata are the existing image). Raises BadImage (size or hash not as
        declared, bad metadata), ImageTooLarge, or Conflict (these bytes are stored under
        other metadata)."""

    async def content(self, sha256: str) -> bytes: ...

    async def remove(self, sha256: str) -> FirmwareImage | None: ...


class _Receiver:
    """Counts and hashes an upload as it streams, against its limit and declared size."""

    def __init__(self, size: int | None, max_size: int) -> None:
        if size is not None and size > max_size:
            raise ImageTooLarge(max_size)
        if size is not None and size < 0:
            raise BadImage("size must not be negative")
        self.declared = size
        self.max_size = max_size
        self.hash = hashlib.sha256()
        self.received = 0

    def take(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_size:
            raise ImageTooLarge(self.max_size)
        if self.declared is not None and self.received > self.declared:
            raise BadImage(f"more than the declared {self.declared} bytes arrived")
        self.hash.update(chunk)

    def finish(self, sha256: str | None) -> str:
        if self.received == 0:
            raise BadImage("the image is empty")
        if self.declared is not None and self.received != self.declared:
            raise BadImage(f"received {self.received} bytes, {self.declared} declared "
                           "(interrupted upload?)")
        digest = self.hash.hexdigest()
        if sha256 is not None and digest != sha256:
            raise BadImage(f"the bytes received hash to sha256 {digest}, not the declared "
                           f"{sha256}")
        return digest


def _same(image: FirmwareImage, name: str, version: str) -> None:
    if image.name != name or image.version != version:
        raise Conflict(f"these bytes are already stored as {image.name} {image.version} "
                       f"(sha256 {image.sha256})")


class MemoryImageStore:
    def __init__(self) -> None:
        self._images: dict[str, tuple[FirmwareImage, bytes]] = {}

    def get(self, sha256: str) -> FirmwareImage | None:
        found = self._images.get(sha256)
        return found[0] if found is not None else None

    def all(self) -> list[FirmwareImage]:
        return sorted((i for i, _ in self._images.values()), key=lambda i: -i.uploaded_at)

    async def add(self, chunks: AsyncIterable[bytes], *, name: str, version: str,
                  device_types: Sequence[str] = (), size: int | None = None,
                  sha256: str | None = None, max_size: int, now: float
                  ) -> tuple[FirmwareImage, bool]:
        name, version, types = check_metadata(name, version, device_types, sha256)
        receiver = _Receiver(size, max_size)
        parts: list[bytes] = []
        async for chunk in chunks:
            receiver.take(chunk)
            parts.append(bytes(chunk))
        digest = receiver.finish(sha256)
        existing = self.get(digest)
        if existing is not None:
            _same(existing, name, version)
            return existing, False
        image = FirmwareImage(digest, name, version, receiver.received, types, now)
        self._images[digest] = (image, b"".join(parts))
        return image, True

    async def content(self, sha256: str) -> bytes:
        found = self._images.get(sha256)
        if found is None:
            raise KeyError(sha256)
        return found[1]

    async def remove(self, sha256: str) -> FirmwareImage | None:
        found = self._images.pop(sha256, None)
        return found[0] if found is not None else None


class DirectoryImageStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._images: dict[str, FirmwareImage] = {}

    @classmethod
    def open(cls, directory: Path) -> DirectoryImageStore:
        """Open (creating) the directory: load the metadata, and remove what an upload or a
        removal cut short by a crash left behind."""
        store = cls(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.iterdir():
            if path.name.startswith(_TEMP_PREFIX):
                log.info("removing %s, left by an interrupted firmware upload", path.name)
                path.unlink(missing_ok=True)
        for path in sorted(directory.glob("*.json")):
            try:
                image = FirmwareImage.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.error("ignoring firmware metadata %s: %s", path, e)
                continue
            content = directory / f"{image.sha256}.bin"
            if path.stem != image.sha256 or not content.is_file() or (
                    content.stat().st_size != image.size):
                log.error("ignoring firmware metadata %s: its image is missing or differs",
                          path)
                continue
            store._images[image.sha256] = image
        for path in directory.glob("*.bin"):
            if path.stem not in store._images:
                # Metadata goes first on removal: an image without it was being removed.
                path.unlink(missing_ok=True)
        return store

    def get(self, sha256: str) -> FirmwareImage | None:
        return self._images.get(sha256)

    def all(self) -> list[FirmwareImage]:
        return sorted(self._images.values(), key=lambda i: -i.uploaded_at)

    async def add(self, chunks: AsyncIterable[bytes], *, name: str, version: str,
                  device_types: Sequence[str] = (), size: int | None = None,
                  sha256: str | None = None, max_size: int, now: float
                  ) -> tuple[FirmwareImage, bool]:
        name, version, types = check_metadata(name, version, device_types, sha256)
        receiver = _Receiver(size, max_size)
        temp = self.directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with open(temp, "wb") as f:
                async for chunk in chunks:
                    receiver.take(chunk)
                    f.write(chunk)
                digest = receiver.finish(sha256)
                await asyncio.to_thread(_sync, f)
            existing = self._images.get(digest)
            if existing is not None:
                _same(existing, name, version)
                return existing, False
            image = FirmwareImage(digest, name, version, receiver.received, types, now)
            os.replace(temp, self.directory / f"{digest}.bin")
            meta = self.directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}.json"
            meta.write_text(json.dumps(image.to_dict()))
            os.replace(meta, self.directory / f"{digest}.json")
            await asyncio.to_thread(_sync_directory, self.directory)
            self._images[digest] = image
            return image, True
        finally:
            # Whatever stopped the upload (a refusal, a client gone, a cancelled task),
            # nothing of it stays.
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)

    async def content(self, sha256: str) -> bytes:
        if sha256 not in self._images:
            raise KeyError(sha256)
        return await asyncio.to_thread((self.directory / f"{sha256}.bin").read_bytes)

    async def remove(self, sha256: str) -> FirmwareImage | None:
        image = self._images.pop(sha256, None)
        if image is None:
            return None
        (self.directory / f"{sha256}.json").unlink(missing_ok=True)
        (self.directory / f"{sha256}.bin").unlink(missing_ok=True)
        await asyncio.to_thread(_sync_directory, self.directory)
        return image


def _sync(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
