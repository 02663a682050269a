"""Firmware downloads for Object 5 (pull): coap, coaps, coap+tcp, coaps+tcp, http and https.

Downloads are resumable: CoAP images come block by block (Block2, 1024 bytes, or smaller
when the server says so), and what has arrived stays when a block or the connection is
lost: the download opens a new connection (a new DTLS session, a new TCP/TLS connection)
after a back-off and asks for the next block; HTTP asks for the rest with a ``Range``
header. A changed representation (another ETag) starts over. Only after several lost
attempts in a row does the download fail, with Update Result 4 (connection lost).

Secure schemes use the credentials of the client's own server account whose URI has the
same scheme, host and port (or, failing that, the only account with that scheme): the TS
names no credentials of their own for downloads, and the server that sends the Package
URI is normally the one that serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

from aiolwm2m.coap.block import BlockValue
from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.errors import CoapError, Forbidden
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import CoapUri, UriError, parse_uri
from aiolwm2m.transport.site import RenderResult

from .account_security import SecurityModeError, ServerTarget, server_target
from .bootstrap_interface import is_bootstrap_account
from .control import DownloadError
from .download_trust import download_context
from .objects.firmware import (
    CONNECTION_LOST,
    INVALID_URI,
    NOT_ENOUGH_FLASH,
    UNSUPPORTED_PROTOCOL,
)
from .server_link import ServerLink, open_link
from .tree import SECURITY

if TYPE_CHECKING:
    from .client import LwM2MClient

log = logging.getLogger(__name__)

COAP_SCHEMES = frozenset({"coap", "coaps", "coap+tcp", "coaps+tcp"})
HTTP_SCHEMES = frozenset({"http", "https"})
#: Lost blocks or connections in a row before the download fails, and the first back-off.
ATTEMPTS = 5
RETRY_DELAY = 0.5
#: An HTTP response head larger than this is not a firmware server's.
MAX_HEAD = 16 << 10


async def download(client: LwM2MClient, uri: str, max_size: int, *,
                   attempts: int = ATTEMPTS, retry_delay: float = RETRY_DELAY) -> bytes:
    scheme = urlsplit(uri).scheme.lower()
    if scheme in COAP_SCHEMES:
        try:
            parsed = parse_uri(uri)
        except UriError as e:
            raise DownloadError(INVALID_URI, str(e)) from None
        return await _CoapDownload(client, parsed, max_size, attempts, retry_delay).run()
    if scheme in HTTP_SCHEMES:
        return await _HttpDownload(uri, max_size, attempts, retry_delay,
                                   client.config.firmware_trust_pem).run()
    raise DownloadError(UNSUPPORTED_PROTOCOL, f"{scheme or 'no scheme'}:// not supported")


class _Resumable:
    """What arrived so far, and how many tries in a row failed."""

    def __init__(self, max_size: int, attempts: int, retry_delay: float) -> None:
        self.body = bytearray()
        self.etag: bytes | str | None = None
        self.max_size = max_size
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.failures = 0

    def restart(self, why: str) -> None:
        log.info("firmware download starts over: %s", why)
        self.body.clear()

    def take(self, data: bytes, total: int | None = None) -> None:
        if total is not None and total > self.max_size:
            raise DownloadError(NOT_ENOUGH_FLASH, f"the image is {total} bytes, room for "
                                f"{self.max_size}")
        self.body += data
        if len(self.body) > self.max_size:
            raise DownloadError(NOT_ENOUGH_FLASH, f"the image is larger than {self.max_size} "
                                "bytes")

    async def lost(self, error: BaseException) -> None:
        self.failures += 1
        if self.failures >= self.attempts:
            raise DownloadError(CONNECTION_LOST, f"{type(error).__name__}: {error}") from None
        delay = self.retry_delay * (2 ** (self.failures - 1))
        log.info("firmware download interrupted at %d bytes (%s: %s); resuming in %.1f s",
                 len(self.body), type(error).__name__, error, delay)
        await asyncio.sleep(delay)


class _ServerBusy(CoapError):
    """5.03 or 5.00: try again later, keeping what arrived."""


class _Exchanging(Protocol):
    async def exchange(self, request: Message, remote: Any, *,
                       timeout: float | None = None) -> Message: ...


def _exchanging(link: ServerLink) -> _Exchanging:
    endpoint = link.endpoint
    if not hasattr(endpoint, "exchange"):
        raise DownloadError(UNSUPPORTED_PROTOCOL, f"no block-wise download over {link.target}")
    return cast(_Exchanging, endpoint)


def _no_requests(request: Message) -> RenderResult:
    raise Forbidden("a download connection takes no requests")


class _CoapDownload(_Resumable):
    def __init__(self, client: LwM2MClient, uri: CoapUri, max_size: int, attempts: int,
                 retry_delay: float) -> None:
        super().__init__(max_size, attempts, retry_delay)
        self.client = client
        self.uri = uri
        self.szx = 6

    def _target(self) -> ServerTarget:
        uri = self.uri
        if not uri.secure:
            return ServerTarget(uri)
        accounts = [s for s in self.client.tree.instances(SECURITY)
                    if not is_bootstrap_account(s)]
        candidates: list[ServerTarget] = []
        for inst in accounts:
            try:
                target = server_target(inst)
            except (SecurityModeError, ValueError):
                continue
            if target.uri.scheme == uri.scheme:
                if (target.uri.host, target.uri.port) == (uri.host, uri.port):
                    candidates.insert(0, target)
                else:
                    candidates.append(target)
        if not candidates:
            raise DownloadError(UNSUPPORTED_PROTOCOL, f"no {uri.scheme}:// server account "
                                "whose credentials could fetch it")
        return dataclasses.replace(candidates[0], uri=uri)

    async def run(self) -> bytes:
        target = self._target()
        while True:
            link: ServerLink | None = None
            try:
                link = await open_link(target, self.client.endpoint, _no_requests,
                                       host=self.client.config.host,
                                       params=self.client.config.transmission)
                if await self._fetch(link):
                    return bytes(self.body)
            except (CoapError, OSError, TimeoutError) as e:
                await self.lost(e)
            finally:
                if link is not None:
                    with contextlib.suppress(Exception):
                        await link.close()

    async def _fetch(self, link: ServerLink) -> bool:
        """Fetch blocks until the last; True when done (errors propagate)."""
        client = self.client
        timeout = client.config.request_timeout
        while True:
            size = 1 << (self.szx + 4)
            request = Message.request(Code.GET, self.uri.path, query=self.uri.query)
            request.block2 = BlockValue(len(self.body) // size, False, self.szx)
            client.radio.radio_on()
            client.radio.touch()
            response = await _exchanging(link).exchange(request, link.address, timeout=timeout)
            client.radio.touch()
            if response.code == Code.NOT_FOUND:
                raise DownloadError(INVALID_URI, f"{self.uri}: 4.04")
            if response.code in (Code.SERVICE_UNAVAILABLE, Code.INTERNAL_SERVER_ERROR):
                # The server will be back (restarting, busy): resume then.
                raise _ServerBusy(code_str(response.code))
            if response.code != Code.CONTENT:
                raise DownloadError(CONNECTION_LOST, f"{self.uri}: {code_str(response.code)}")
            self.failures = 0
            block = response.block2
            if block is None:
                # The whole image in one response (it fits, or the server ignores Block2).
                self.body.clear()
                self.take(response.payload)
                return True
            etag = response.etag
            if self.etag is not None and etag != self.etag:
                self.restart("the image changed (another ETag)")
                self.etag = etag
                continue
            self.etag = etag
            if block.szx < self.szx:
                self.szx = block.szx  # the server wants smaller blocks
            if block.offset != len(self.body):
                if block.offset > len(self.body):
                    raise DownloadError(CONNECTION_LOST, f"block {block.num} skips ahead")
                del self.body[block.offset:]
            self.take(response.payload, response.size2)
            if not block.more:
                return True


class _HttpDownload(_Resumable):
    def __init__(self, uri: str, max_size: int, attempts: int, retry_delay: float,
                 trust_pem: bytes | None = None) -> None:
        super().__init__(max_size, attempts, retry_delay)
        self.trust_pem = trust_pem
        parts = urlsplit(uri)
        if not parts.hostname:
            raise DownloadError(INVALID_URI, f"no host in {uri!r}")
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as e:
            raise DownloadError(INVALID_URI, f"bad port in {uri!r}: {e}") from None
        self.host = parts.hostname
        self.tls = parts.scheme.lower() == "https"
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if any(c in self.target for c in "\r\n ") or any(c in self.host for c in "\r\n "):
            raise DownloadError(INVALID_URI, "the URI has spaces or line breaks")
        self.total: int | None = None

    async def run(self) -> bytes:
        while True:
            try:
                if await self._fetch():
                    return bytes(self.body)
            except ssl.SSLCertVerificationError as e:
                # Not a lost connection: trying again meets the same certificate.
                raise DownloadError(CONNECTION_LOST, f"the server's certificate is not "
                                    f"trusted: {e.verify_message or e}") from None
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                await self.lost(e)

    async def _fetch(self) -> bool:
        context = download_context(self.trust_pem) if self.tls else None
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            self.host, self.port, ssl=context), 30)
        try:
            have = len(self.body)
            host = f"[{self.host}]" if ":" in self.host else self.host
            lines = [f"GET {self.target} HTTP/1.1", f"Host: {host}:{self.port}",
                     "User-Agent: aiolwm2m", "Connection: close"]
            if have:
                lines.append(f"Range: bytes={have}-")
                if isinstance(self.etag, str):
                    lines.append(f"If-Range: {self.etag}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status, headers = parse_response_head(head)
            if status == 404:
                raise DownloadError(INVALID_URI, f"{self.host}{self.target}: HTTP 404")
            if status == 416 and have and have == self.total:
                return True
            if status >= 500:
                raise ConnectionError(f"HTTP {status}")  # busy or restarting: resume later
            if status not in (200, 206):
                raise DownloadError(CONNECTION_LOST, f"HTTP {status}")
            if status == 200 and have:
                self.restart("the server sent the whole image again")
            if status == 206 and not headers.get("content-range", "").startswith(
                    f"bytes {have}-"):
                raise ValueError("Content-Range does not start where the download stopped")
            self.etag = headers.get("etag")
            total = _total_size(status, headers, len(self.body))
            if total is not None:
                self.total = total
            self.failures = 0
            if headers.get("transfer-encoding", "").lower() == "chunked":
                await self._chunked(reader)
                return True
            length = headers.get("content-length")
            if length is None or not length.isdigit():
                raise ValueError("no Content-Length")
            await self._exactly(reader, int(length))
            return True
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _exactly(self, reader: asyncio.StreamReader, length: int) -> None:
        if len(self.body) + length > self.max_size:
            raise DownloadError(NOT_ENOUGH_FLASH, f"the image is larger than {self.max_size} "
                                "bytes")
        left = length
        while left:
            data = await asyncio.wait_for(reader.read(min(left, 65536)), 30)
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            self.take(data)
            left -= len(data)

    async def _chunked(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
            size_text = line.split(b";", 1)[0].strip()
            if len(size_text) > 16:
                raise ValueError("chunk size line too long")
            size = int(size_text, 16)
            if size == 0:
                await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
                return
            await self._exactly(reader, size)
            await asyncio.wait_for(reader.readexactly(2), 30)


def _total_size(status: int, headers: dict[str, str], have: int) -> int | None:
    if status == 206:
        total = headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def parse_response_head(head: bytes) -> tuple[int, dict[str, str]]:
    """The status and headers (lower-case names; the last of repeated ones) of an HTTP/1.x
    response head, or ValueError saying what is wrong with it."""
    if len(head) > MAX_HEAD:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError("not an HTTP/1.x status line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("malformed header line")
        headers[name.lower()] = value.strip()
    return int(code), headers
