"""One endpoint towards a Resource Directory, over whichever transport its URI names.

``coap://`` and ``coaps://`` get a UDP socket of their own (with one DTLS session for
coaps, authenticated with the RD credentials: PSK, RPK with the RD's key pinned, or X.509
checked against the trust anchor); ``coap+tcp://`` and ``coaps+tcp://`` a TCP endpoint
holding the one connection it dials (TLS for coaps+tcp). The RD credentials are separate
from any LwM2M account's: an RD is just another CoAP server.

The endpoint serves ``site`` to whoever sends requests over it, which is how an RD doing a
simple registration fetches our /.well-known/core (over the same DTLS session or TCP
connection on the secure and reliable transports).
"""

from __future__ import annotations

from typing import Any

from aiolwm2m.client.account_security import AccountSecurity, SecurityModeError, ServerTarget
from aiolwm2m.client.endpoint import bound_socket
from aiolwm2m.client.server_link import check_credentials
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import CoapUri
from aiolwm2m.security.credentials import Credentials
from aiolwm2m.security.errors import SecurityError
from aiolwm2m.security.keys import normalize_spki
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity
from aiolwm2m.transport.udp import UdpEndpoint

Endpoint = UdpEndpoint | TcpEndpoint


def account_of(security: AccountSecurity | Credentials | None) -> AccountSecurity | None:
    """Credentials given bare (a :class:`PskCredentials`...) as an account."""
    if security is None or isinstance(security, AccountSecurity):
        return security
    return AccountSecurity(security)


def rd_target(uri: CoapUri, security: AccountSecurity | None) -> ServerTarget:
    """The RD as a target of the security engine; a ValueError says when the URI and the
    credentials do not go together."""
    if uri.secure and security is None:
        raise ValueError(f"{uri.scheme}:// needs RD credentials (PSK, RPK or X.509)")
    if not uri.secure and security is not None:
        raise ValueError(f"RD credentials need a coaps:// or coaps+tcp:// URI, not "
                         f"{uri.scheme}://")
    if security is None:
        return ServerTarget(uri)
    try:
        key = (normalize_spki(security.server_public_key)
               if security.server_public_key else None)
    except SecurityError as e:
        raise SecurityModeError(f"the RD's public key: {e.reason}") from None
    return ServerTarget(uri, security.credentials, key, security.sni or uri.host)


def local_host_for(uri: CoapUri) -> str:
    """The wildcard address of the RD's family: IPv6 (which takes IPv4 too) for an IPv6
    literal, else IPv4 (a name resolves to IPv4 first)."""
    return "::" if ":" in uri.host else "0.0.0.0"


class RdConnection:
    """The endpoint and the RD's address on it."""

    def __init__(self, uri: CoapUri, endpoint: Endpoint, address: Any) -> None:
        self.uri = uri
        self.endpoint = endpoint
        self.address = address
        self.closed = False

    def __repr__(self) -> str:
        return f"<RdConnection {self.uri.scheme}://{self.uri.host}:{self.uri.port}>"

    @classmethod
    async def open(cls, uri: CoapUri, security: AccountSecurity | None = None, *,
                   site: Site | None = None, host: str | None = None,
                   params: TransmissionParameters = DEFAULT_PARAMETERS) -> RdConnection:
        """Open the endpoint for ``uri`` (no packet is sent yet: DTLS and TCP connect on
        the first request). Unusable credentials raise SecurityModeError (a ValueError)
        with the reason, before any socket is opened."""
        target = rd_target(uri, security)
        check_credentials(target)
        bind = host if host is not None else local_host_for(uri)
        if uri.scheme == "coap":
            udp = UdpEndpoint(bound_socket(bind, 0), site=site, params=params)
            try:
                return cls(uri, udp, await udp.resolve(uri.host, uri.port))
            except BaseException:
                await udp.close()
                raise
        if uri.scheme == "coaps":
            assert target.credentials is not None
            dtls = DtlsEndpoint(bound_socket(bind, 0), server_credentials=None, site=site,
                                params=params)
            try:
                address = await dtls.secure((uri.host, uri.port), ClientSecurity(
                    target.credentials, server_public_key=target.server_public_key,
                    server_name=target.server_name))
            except BaseException:
                await dtls.close()
                raise
            return cls(uri, dtls, address)
        tls = None
        if target.credentials is not None:
            tls = TlsClientSecurity(target.credentials, server_name=target.server_name,
                                    server_public_key=target.server_public_key)
        tcp = await TcpEndpoint.create(listen=False, site=site, tls_client=tls)
        return cls(uri, tcp, (uri.host, uri.port))

    async def request(self, message: Message, timeout: float | None = None) -> Message:
        """Send ``message`` to the RD and return the response (block-wise transfers done
        here; a timeout or a lost connection raises)."""
        return await self.endpoint.request(message, self.address, timeout=timeout)

    async def close(self) -> None:
        """Close the endpoint (DTLS close_notify, TCP Release) once."""
        if self.closed:
            return
        self.closed = True
        await self.endpoint.close()
