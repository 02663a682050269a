"""The process-wide cffi callbacks GnuTLS calls into.

One set of callbacks serves every session: GnuTLS hands back the transport pointer (or the
session pointer, for credential callbacks), which is the ``ffi.new_handle`` of our session
object, so no per-session closure (an executable trampoline page each) is allocated. These
module globals live for the whole process, which keeps them alive as long as any session.

Every callback returns -1 on failure (``error=-1``): cffi's default 0 would read as EOF to
the push/pull machinery and as "key found" to the PSK lookup.
"""

from __future__ import annotations

import errno
from typing import Any, Protocol

from .gnutls_ffi import ffi, lib


class _Endpoint(Protocol):
    """What the session objects behind the handles provide to the callbacks."""

    _gnutls_session: Any
    _in: Any  # list[bytes] of datagrams, or a bytearray of stream bytes
    _out: list[bytes]
    _starved: bool

    def _pull(self, size: int) -> bytes | None: ...

    def _has_input(self) -> bool: ...

    def _psk_key(self, identity: bytes) -> bytes | None: ...

    def _verify_peer(self) -> bool: ...


EAGAIN = errno.EAGAIN


def _push_callback(ptr: Any, data: Any, size: int) -> int:
    # Both session kinds collect output as a list of byte strings.
    endpoint: _Endpoint = ffi.from_handle(ptr)
    endpoint._out.append(ffi.buffer(data, size)[:])
    return size


def _pull_datagram_callback(ptr: Any, buf: Any, size: int) -> int:
    endpoint: _Endpoint = ffi.from_handle(ptr)
    queue = endpoint._in
    if not queue:
        endpoint._starved = True
        lib().gnutls_transport_set_errno(endpoint._gnutls_session, EAGAIN)
        return -1
    datagram = queue.pop(0)
    n = min(len(datagram), size)
    ffi.memmove(buf, datagram, n)
    return n


def _pull_stream_callback(ptr: Any, buf: Any, size: int) -> int:
    endpoint: _Endpoint = ffi.from_handle(ptr)
    chunk = endpoint._pull(size)
    if chunk is None:
        lib().gnutls_transport_set_errno(endpoint._gnutls_session, EAGAIN)
        return -1
    ffi.memmove(buf, chunk, len(chunk))
    return len(chunk)


def _pull_timeout_callback(ptr: Any, ms: int) -> int:
    # Never blocks: GnuTLS asks "is a datagram waiting?" and we answer from the queue.
    endpoint: _Endpoint = ffi.from_handle(ptr)
    return 1 if endpoint._has_input() else 0


def _psk_server_callback(session: Any, username: Any, key: Any) -> int:
    endpoint: _Endpoint = ffi.from_handle(lib().gnutls_session_get_ptr(session))
    identity = ffi.buffer(username.data, username.size)[:] if username.data != ffi.NULL else b""
    secret = endpoint._psk_key(identity)
    if secret is None:
        return -1
    # GnuTLS frees the key buffer itself, so it must come from gnutls_malloc.
    buf = lib().gnutls_malloc(len(secret))
    if buf == ffi.NULL:
        return -1
    ffi.memmove(buf, secret, len(secret))
    key.data = ffi.cast("unsigned char *", buf)
    key.size = len(secret)
    return 0


def _verify_callback(session: Any) -> int:
    endpoint: _Endpoint = ffi.from_handle(lib().gnutls_session_get_ptr(session))
    return 0 if endpoint._verify_peer() else -1


def _collect_callback(ptr: Any, data: Any, size: int) -> int:
    """Push function for gnutls_dtls_cookie_send: the handle is a plain list."""
    sink: list[bytes] = ffi.from_handle(ptr)
    sink.append(ffi.buffer(data, size)[:])
    return size


# The C-callable objects; module globals, so they live as long as the process.
_PUSH = "ssize_t(gnutls_transport_ptr_t, const void *, size_t)"
push_callback: Any = ffi.callback(_PUSH, _push_callback, error=-1)
_PULL = "ssize_t(gnutls_transport_ptr_t, void *, size_t)"
pull_datagram_callback: Any = ffi.callback(_PULL, _pull_datagram_callback, error=-1)
pull_stream_callback: Any = ffi.callback(_PULL, _pull_stream_callback, error=-1)
pull_timeout_callback: Any = ffi.callback("int(gnutls_transport_ptr_t, unsigned int)",
                                          _pull_timeout_callback, error=-1)
psk_server_callback: Any = ffi.callback(
    "int(gnutls_session_t, const gnutls_datum_t *, gnutls_datum_t *)", _psk_server_callback,
    error=-1)
verify_callback: Any = ffi.callback("int(gnutls_session_t)", _verify_callback, error=-1)
collect_callback: Any = ffi.callback(_PUSH, _collect_callback, error=-1)
