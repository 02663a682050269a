"""Bounds on what an HTTP client can make the web server hold before its request begins.

uvicorn's httptools protocol keeps a connection open for as long as its peer trickles a
request head, and gathers the head (URL, header names and values) without a size limit;
between requests only its keep-alive timeout applies, and any byte resets it. Hypercorn,
served before, closed a connection whose head had not arrived within its 5 s idle timeout
and refused heads over h11's 16 KiB. :func:`limited_protocol` restores both bounds:

- a request head must be complete within ``head_timeout`` seconds of its first byte (or of
  the connection, for the first request): otherwise the connection is closed;
- it may not exceed ``max_head_bytes``: 431, and the connection is closed when the head
  timeout expires (what the client still sends meanwhile is dropped unread).

Bodies are not concerned: :class:`~.request_gate.RequestGate` limits them per route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .write_coalescing import CoalescingTransport

_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
              b"\r\ncontent-length: 45\r\nconnection: close\r\n\r\n"
              b'{"detail":"request head larger than allowed"}')


@dataclass(frozen=True)
class HttpLimits:
    #: Seconds a request's line and headers may take to arrive.
    head_timeout: float = 10.0
    #: Largest request line and headers, in bytes (431 beyond).
    max_head_bytes: int = 32 * 1024
    #: Seconds an idle keep-alive connection stays open between requests.
    keep_alive_timeout: float = 5.0
    #: HTTPS (:mod:`.tls_listener`): TLS connections open at most, handshakes under way at
    #: most, and handshakes under way from one address at most.
    tls_max_connections: int = 2048
    tls_max_handshakes: int = 256
    tls_handshakes_per_address: int = 32


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of :class:`HttpLimits`."""

    limits = HttpLimits()
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    #: After a 431: what still arrives is dropped until the head timer closes the
    #: connection (closing at once, on unread data, would make the kernel send a reset that
    #: can destroy the 431 before the client reads it).
    _discarding = False
    #: Called once the connection is lost (set by :mod:`.tls_listener`, which counts them).
    on_lost: Callable[[], None] | None = None

    def _serving(self) -> bool:
        """Whether a request's head is complete and its response is still to finish."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout,
                                                    self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._serving() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A response's head and body in one write (its flow control stays the transport's).
        self.transport = cast(asyncio.Transport, CoalescingTransport(transport, self.loop))
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self.on_lost is not None:
            self.on_lost()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if not self._serving():
            self._arm_head_timer()
        super().data_received(data)
        if self._serving() or self.transport.is_closing():
            return
        # Still inside a head after this chunk (a chunk that completes one, body and all,
        # is not counted: its head is done).
        self._head_bytes += len(data)
        if self._head_bytes > self.limits.max_head_bytes:
            self._discarding = True
            self.transport.write(_TOO_LARGE)
            if self.transport.can_write_eof():
                self.transport.write_eof()

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, bound to ``limits``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
