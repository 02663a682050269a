"""Judging the peer's raw public key or certificate chain, during or after the handshake.

Runs inside GnuTLS' verify callback (fresh handshakes) and again after a resumed handshake,
which skips that callback, so a key or certificate revoked since the ticket was issued
is refused either way.
"""

from __future__ import annotations

from typing import Any

from .context import EndpointContext
from .credentials import IdentityKind, PeerIdentity
from .errors import CertificateRejected, UnknownIdentity
from .gnutls_ffi import GNUTLS_CRT_RAWPK, GNUTLS_CRT_X509, GNUTLS_CTYPE_PEERS, ffi, lib
from .x509 import x509_identity


def _presented(session: Any) -> tuple[list[bytes], int]:
    """The peer's certificate chain (or raw public key) as DER, and its type."""
    g = lib()
    count = ffi.new("unsigned int *")
    peers = g.gnutls_certificate_get_peers(session, count)
    if peers == ffi.NULL or count[0] == 0:
        return [], 0
    chain = [ffi.buffer(peers[i].data, peers[i].size)[:] for i in range(count[0])]
    return chain, g.gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS)


def presented_identity(session: Any) -> PeerIdentity | None:
    """Who a refused peer's key or certificate names, unverified: for reports only."""
    try:
        chain, ctype = _presented(session)
        if ctype == GNUTLS_CRT_RAWPK:
            return PeerIdentity(IdentityKind.RPK, rpk_spki_der=chain[0])
        if ctype == GNUTLS_CRT_X509:
            return x509_identity(chain[:1])
    except Exception:  # an unparseable certificate is reported without a name
        return None
    return None


def certificate_peer_identity(session: Any, ctx: EndpointContext) -> PeerIdentity:
    """The identity the peer proved, or CertificateRejected / UnknownIdentity."""
    chain, ctype = _presented(session)
    if not chain:
        raise CertificateRejected("the peer sent no certificate or raw public key")
    if ctype == GNUTLS_CRT_RAWPK:
        spki = chain[0]
        if ctx.server:
            if ctx.lookup is None or not ctx.lookup.rpk_allowed(spki):
                raise UnknownIdentity("the client's raw public key is not registered")
        elif spki != ctx.expected_server_rpk:
            raise CertificateRejected("the server's raw public key is not the expected one")
        return PeerIdentity(IdentityKind.RPK, rpk_spki_der=spki)
    if ctype == GNUTLS_CRT_X509:
        if ctx.verifier is None:
            raise CertificateRejected("X.509 certificates are not accepted here")
        identity = ctx.verifier.verify(chain, hostname=None if ctx.server else ctx.server_name,
                                       peer_is_server=not ctx.server)
        if ctx.server and (ctx.lookup is None or not ctx.lookup.x509_allowed(identity)):
            raise UnknownIdentity(f"certificate {identity.name!r} is not allowed to connect")
        return identity
    raise CertificateRejected(f"unsupported certificate type {ctype}")
