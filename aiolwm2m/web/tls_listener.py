"""HTTPS on the web port, with bounds on what a peer can hold before it has said anything.

A TLS connection costs the server its TLS state and buffers from the moment it is
accepted, before the peer has sent a byte: measured here, 52 KiB with uvloop and 306 KiB
with asyncio's own loop (whose TLS layer reads into a 256 KiB buffer) per connection that
never starts its handshake, held for the loop's default handshake timeout of 60 s.
uvicorn's TLS listener takes every connection it is offered. This one accepts them itself
and

- closes a connection at once, before any TLS work, when its address already has
  ``tls_handshakes_per_address`` handshakes under way, when ``tls_max_handshakes`` are
  under way in all, or when ``tls_max_connections`` TLS connections are open;
- gives a handshake ``head_timeout`` seconds (the time a request head may take);

then the loop wraps the accepted socket in TLS (``connect_accepted_socket``) for uvicorn's
protocol, which serves it as it serves plain HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from aiolwm2m.transport.stream_limits import ConnectionQuota, StreamLimits

from .http_limits import HttpLimits

log = logging.getLogger(__name__)

#: Pause after the accept itself fails (out of file descriptors, say).
_ACCEPT_BACKOFF = 0.1


class TlsListener:
    """Accepts connections within the bounds and has the loop run their handshakes.

    ``make_protocol(on_lost)`` makes the protocol of one connection; it must call
    ``on_lost()`` once when its connection is lost."""

    def __init__(self, context: ssl.SSLContext, limits: HttpLimits,
                 make_protocol: Callable[[Callable[[], None]], asyncio.Protocol]) -> None:
        self.context = context
        self.limits = limits
        self.make_protocol = make_protocol
        self.connections = 0
        #: Handshakes under way, in all and per address (the CoAP TCP listeners' counter).
        self._handshakes = ConnectionQuota(StreamLimits(
            max_connections=limits.tls_max_handshakes,
            max_connections_per_address=limits.tls_handshakes_per_address))
        #: Connections closed unanswered for a bound, and handshakes that failed.
        self.refused = 0
        self.failed_handshakes = 0
        self._handshaking: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    def start(self, sock: socket.socket) -> None:
        self._accepting = asyncio.get_running_loop().create_task(self._accept(sock))

    async def close(self) -> None:
        """Stop accepting and abandon the handshakes under way (the caller closes the
        listening socket)."""
        tasks = [t for t in (self._accepting, *self._handshaking) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as e:
                log.warning("HTTPS port: accept failed: %s", e)
                await asyncio.sleep(_ACCEPT_BACKOFF)
                continue
            host = str(address[0]) if isinstance(address, tuple) and address else ""
            if not self._admit(host):
                conn.close()
                continue
            task = loop.create_task(self._handshake(conn, host))
            self._handshaking.add(task)
            task.add_done_callback(self._handshaking.discard)

    @property
    def handshakes(self) -> int:
        return self._handshakes.total

    def _admit(self, host: str) -> bool:
        if (self.connections >= self.limits.tls_max_connections
                or self._handshakes.admit(host) is not None):
            self.refused += 1
            return False
        self.connections += 1
        return True

    async def _handshake(self, conn: socket.socket, host: str) -> None:
        lost = _Once(self._connection_ended)
        connected = False
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: self.make_protocol(lost), conn, ssl=self.context,
                ssl_handshake_timeout=self.limits.head_timeout)
            connected = True
        except Exception as e:  # failed, timed out or gone: nothing was served
            self.failed_handshakes += 1
            log.debug("TLS handshake from %s failed: %s", host, e)
        finally:
            self._handshakes.release(host)
            if not connected:
                conn.close()
                lost()

    def _connection_ended(self) -> None:
        self.connections -= 1


class _Once:
    """Calls ``action`` the first time it is called."""

    __slots__ = ("_action",)

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()
