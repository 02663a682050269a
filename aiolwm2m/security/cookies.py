"""Stateless DTLS cookies (RFC 6347 4.2.1) with a rotating secret.

GnuTLS derives the cookie from a secret and the client's transport address, so verifying a
cookie needs no per-client memory. The secret changes every ``lifetime`` seconds and the
previous one stays valid for one more period, so a cookie lives between one and two periods.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

from .callbacks import collect_callback
from .gnutls_ffi import datum, ffi, lib


def client_id(peer: Hashable) -> bytes:
    """The bytes a cookie is bound to: the printed transport address."""
    return repr(peer).encode()


class CookieJar:
    def __init__(self, lifetime: float = 60.0) -> None:
        self.lifetime = lifetime
        self._current = datum(os.urandom(32))
        self._previous: tuple[Any, Any] | None = None
        self._rotate_at: float | None = None
        self._sink: list[bytes] = []
        self._sink_handle = ffi.new_handle(self._sink)

    def rotate_if_due(self, now: float) -> None:
        if self._rotate_at is None:
            self._rotate_at = now + self.lifetime
        elif now >= self._rotate_at:
            self._previous = self._current
            self._current = datum(os.urandom(32))
            self._rotate_at = now + self.lifetime

    def verify(self, client: bytes, datagram: bytes, prestate: Any) -> bool:
        """True (and ``prestate`` filled in) when the ClientHello carries a valid cookie."""
        g = lib()
        msg = ffi.from_buffer(datagram)
        cid = ffi.from_buffer(client)
        if g.gnutls_dtls_cookie_verify(self._current[0], cid, len(client), msg,
                                       len(datagram), prestate) >= 0:
            return True
        return self._previous is not None and g.gnutls_dtls_cookie_verify(
            self._previous[0], cid, len(client), msg, len(datagram), prestate) >= 0

    def hello_verify_request(self, client: bytes, prestate: Any) -> list[bytes]:
        """The HelloVerifyRequest datagram(s) answering a ClientHello without valid cookie."""
        lib().gnutls_dtls_cookie_send(self._current[0], ffi.from_buffer(client), len(client),
                                      prestate, self._sink_handle, collect_callback)
        out = self._sink[:]
        self._sink.clear()
        return out
