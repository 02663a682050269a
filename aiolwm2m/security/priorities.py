"""Every GnuTLS priority string of the engine, in one place.

The order lists the RFC 7925 (IoT profile) suites first: TLS_PSK_WITH_AES_128_CCM_8 and
TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8. GCM, CCM, ChaCha20 and CBC follow for peers that lack
CCM_8, and ECDHE-PSK adds forward secrecy to PSK when the peer offers it. GnuTLS follows the
client's preference unless ``%SERVER_PRECEDENCE`` is given, which servers do so that the
profile suite wins whenever the client offers it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .gnutls_ffi import ffi, lib, strerror

CIPHERS = ("-CIPHER-ALL:+AES-128-CCM-8:+AES-128-CCM:+AES-128-GCM:+AES-256-GCM:"
           "+CHACHA20-POLY1305:+AES-128-CBC:+AES-256-CBC")
MACS = "-MAC-ALL:+AEAD:+SHA256:+SHA384:+SHA1"
PSK_KX = "+PSK:+ECDHE-PSK"
CERT_KX = "+ECDHE-ECDSA:+ECDHE-RSA"
DTLS_VERSIONS = "-VERS-ALL:+VERS-DTLS1.2"
TLS_VERSIONS = "-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
RAWPK_ONLY = "-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
CTYPES_BOTH = "-CTYPE-ALL:+CTYPE-SRV-X509:+CTYPE-SRV-RAWPK:+CTYPE-CLI-RAWPK:+CTYPE-CLI-X509"
# GnuTLS picks the server certificate type in the client's order, and libcoap (GnuTLS) lists
# X.509 before RPK even in RPK mode. A server with both therefore looks at the ClientHello
# first and, when the client accepts a server RPK, uses this variant (records.py).
CTYPES_SERVER_RPK = "-CTYPE-ALL:+CTYPE-SRV-RAWPK:+CTYPE-CLI-RAWPK:+CTYPE-CLI-X509"


@dataclass(frozen=True, slots=True)
class Modes:
    """Which security modes one endpoint accepts (a client uses exactly one)."""

    psk: bool = False
    rpk: bool = False
    x509: bool = False


def priority_string(modes: Modes, *, datagram: bool, server: bool,
                    server_rpk: bool = False) -> str:
    if not (modes.psk or modes.rpk or modes.x509):
        raise ConfigurationError("enable at least one of PSK, RPK and X.509")
    kx = [k for k, on in ((PSK_KX, modes.psk), (CERT_KX, modes.rpk or modes.x509)) if on]
    parts = ["NORMAL", DTLS_VERSIONS if datagram else TLS_VERSIONS, "-KX-ALL", *kx, CIPHERS, MACS]
    if modes.rpk:
        if not modes.x509:
            parts.append(RAWPK_ONLY)
        else:
            parts.append(CTYPES_SERVER_RPK if server_rpk else CTYPES_BOTH)
    if server:
        parts.append("%SERVER_PRECEDENCE")
    return ":".join(parts)


_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def priority_cache(priority: str) -> Any:
    """The parsed ``gnutls_priority_t`` for a string; parsed once and kept for the process."""
    cached = _cache.get(priority)
    if cached is not None:
        return cached
    with _cache_lock:
        cached = _cache.get(priority)
        if cached is None:
            out = ffi.new("gnutls_priority_t *")
            err = ffi.new("char **")
            rc = lib().gnutls_priority_init(out, priority.encode(), err)
            if rc < 0:
                where = ffi.string(err[0]).decode() if err[0] != ffi.NULL else "?"
                raise ConfigurationError(f"bad priority string at {where!r}: {strerror(rc)}", rc)
            cached = _cache[priority] = out[0]
    return cached
