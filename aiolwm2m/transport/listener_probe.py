"""Start-up self-check: does each listener really answer a client?

Binding a port proves little: a listener whose accept path fails (a transport class the
protocol did not expect, missing credentials) resets every connection while the server looks
healthy. These probes talk to a listener over loopback the way a client's first packet would
and want an answer of the right kind: a CSM for a CSM on coap+tcp, any TLS record (ServerHello
or alert) for a ClientHello on coaps+tcp, a Reset for a CoAP ping on UDP, any DTLS record for a
ClientHello on DTLS. Each costs one round trip on loopback.

The ClientHellos are built here, not by the TLS engine, so that they carry no PSK identity
the server would look up (TLS 1.2 sends it only after the ServerHello) and cannot count as
a failed login.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from typing import Any

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.tcp_framing import FrameParser, FramingError

__all__ = ["ListenerCheckFailed", "check_listeners", "dtls_client_hello", "loopback_for",
           "probe_datagram", "probe_stream", "tls_client_hello"]

# TLS_PSK_WITH_AES_128_CCM_8, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
# TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_PSK_WITH_AES_128_GCM_SHA256,
# TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: one suite for each mode the engine serves.
_SUITES = (0xC0A8, 0xC0AE, 0xC02B, 0x00A8, 0xC02F)
_HANDSHAKE, _ALERT = 22, 21
_CSM_FRAME = b"\x00\xe1"  # Len 0, no token, code 7.01


class ListenerCheckFailed(Exception):
    """A listener bound its port but does not answer over loopback."""


def loopback_for(host: str) -> list[str]:
    """Where to reach a listener bound to ``host`` from this machine, best first."""
    if host in ("", "0.0.0.0"):
        return ["127.0.0.1"]
    if host == "::":
        return ["::1", "127.0.0.1"]  # IPv6 may be off on lo; "::" also takes IPv4
    if host.startswith("::ffff:") and "." in host:
        return [host[7:]]
    return [host]


def _vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _vector(body, 2)


def _hello_body(version: bytes, cookie: bytes | None, alpn: bool) -> bytes:
    suites = b"".join(struct.pack("!H", s) for s in _SUITES)
    extensions = [
        _extension(10, _vector(struct.pack("!H", 23), 2)),  # supported_groups: secp256r1
        _extension(11, _vector(b"\x00", 1)),  # ec_point_formats: uncompressed
        # signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
        _extension(13, _vector(struct.pack("!HHH", 0x0403, 0x0804, 0x0401), 2)),
    ]
    if alpn:
        extensions.append(_extension(16, _vector(_vector(b"coap", 1), 2)))
    return b"".join((version, os.urandom(32), b"\x00",  # no session ID
                     b"" if cookie is None else _vector(cookie, 1),
                     _vector(suites, 2), b"\x01\x00",  # compression: null only
                     _vector(b"".join(extensions), 2)))


def tls_client_hello() -> bytes:
    """A TLS 1.2 ClientHello record offering PSK and certificate suites and ALPN "coap"."""
    body = _hello_body(b"\x03\x03", None, alpn=True)
    handshake = b"\x01" + _vector(body, 3)
    return bytes((_HANDSHAKE,)) + b"\x03\x01" + _vector(handshake, 2)


def dtls_client_hello() -> bytes:
    """A DTLS 1.2 ClientHello record without a cookie (answered by a HelloVerifyRequest)."""
    body = _hello_body(b"\xfe\xfd", b"", alpn=False)
    n = len(body).to_bytes(3, "big")
    handshake = b"\x01" + n + b"\x00\x00" + b"\x00\x00\x00" + n + body
    return (bytes((_HANDSHAKE,)) + b"\xfe\xfd" + b"\x00\x00" + b"\x00" * 6
            + _vector(handshake, 2))


async def probe_stream(sock: socket.socket, address: tuple[str, int], tls: bool,
                       timeout: float) -> None:
    """Connect ``sock`` (non-blocking, bound) to ``address`` and check the first answer."""
    loop = asyncio.get_running_loop()
    what = "a TLS ClientHello" if tls else "a CSM"
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, tls_client_hello() if tls else _CSM_FRAME)
            parser = FrameParser(1 << 16)
            while True:
                data = await loop.sock_recv(sock, 4096)
                if not data:
                    raise ListenerCheckFailed(f"it closed the connection without answering "
                                              f"{what}")
                if tls:
                    if data[0] in (_HANDSHAKE, _ALERT):
                        return
                    raise ListenerCheckFailed(f"it answered {what} with something other "
                                              "than TLS")
                for message in parser.feed(data):
                    if message.code == Code.CSM:
                        return
                    raise ListenerCheckFailed(f"it answered {what} with code "
                                              f"{message.code:#04x}")
    except TimeoutError:
        raise ListenerCheckFailed(f"no answer to {what} within {timeout:g}s") from None
    except FramingError as e:
        raise ListenerCheckFailed(f"it answered {what} with a malformed frame: "
                                  f"{e.reason}") from None
    except OSError as e:
        raise ListenerCheckFailed(f"{what} failed: {e.strerror or e}") from None


async def probe_datagram(address: tuple[str, int], dtls: bool, timeout: float) -> None:
    """Send a CoAP ping (UDP) or a ClientHello (DTLS) to ``address``; any answer of the
    right kind shows the endpoint is reading its socket."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    what = "a DTLS ClientHello" if dtls else "a CoAP ping"
    mid = os.urandom(2)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, dtls_client_hello() if dtls
                                    else b"\x40\x00" + mid)  # CON, empty, no token
            while True:
                data = await loop.sock_recv(sock, 2048)
                if dtls and data[:1] in (bytes((_HANDSHAKE,)), bytes((_ALERT,))):
                    return
                if not dtls and len(data) >= 4 and data[0] >> 4 == 0x7 and data[2:4] == mid:
                    return  # version 1, Reset, with the ping's message ID
    except TimeoutError:
        raise ListenerCheckFailed(f"no answer to {what} within {timeout:g}s") from None
    except OSError as e:
        raise ListenerCheckFailed(f"{what} failed: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def check_listeners(endpoints: dict[str, Any], timeout: float = 5.0) -> None:
    """Probe every endpoint of ``endpoints`` (by transport name); raise
    :class:`ListenerCheckFailed` naming the first one that does not answer. Stream endpoints
    probe themselves (``self_check``) so that they can keep the probe out of their
    connection counts and events; datagram endpoints get a ping or a ClientHello."""
    for name, endpoint in endpoints.items():
        address = endpoint.local_address
        if not address:
            continue
        host, port = str(address[0]), int(address[1])
        scheme = getattr(endpoint, "scheme", "coap")
        try:
            self_check = getattr(endpoint, "self_check", None)
            if self_check is not None:
                await self_check(timeout)
                continue
            failure: ListenerCheckFailed | None = None
            for target in loopback_for(host):
                try:
                    await probe_datagram((target, port), scheme == "coaps", timeout)
                    failure = None
                    break
                except ListenerCheckFailed as e:
                    failure = e
            if failure is not None:
                raise failure
        except ListenerCheckFailed as e:
            raise ListenerCheckFailed(f"the {scheme} listener {name!r} on {_shown(host, port)} "
                                      f"does not work: {e}") from None
