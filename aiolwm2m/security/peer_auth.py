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


def certificate_peer_identity(session: Any, ctx: EndpointContext) -> PeerIdentity:
    """The identity the peer proved, or CertificateRejected / UnknownIdentity."""
    g = lib()
    count = ffi.new("unsigned int *")
    peers = g.gnutls_certificate_get_peers(session, count)
    if peers == ffi.NULL or count[0] == 0:
        raise CertificateRejected("the peer sent no certificate or raw public key")
    chain = [ffi.buffer(peers[i].data, peers[i].size)[:] for i in range(count[0])]
    ctype = g.gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS)
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
