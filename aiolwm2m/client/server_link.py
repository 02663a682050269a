"""How the client reaches one server: the endpoint carrying its messages, and its address.

``coap://`` servers share the client's UDP endpoint (requests they send are told apart by
source address). Every other server gets an endpoint of its own, opened when its account
starts talking and closed when the account stops or its Security instance changes:

* ``coaps://``: a UDP socket with one DTLS session, authenticated as the Security instance
  says (PSK; RPK with the server's key pinned; X.509 with the certificate usage);
* ``coap+tcp://`` / ``coaps+tcp://`` (binding T): a TCP endpoint holding the one connection
  the client opens (TLS for coaps+tcp); the server's requests arrive on that connection.
* ``http2://`` / ``https://`` (binding H, ``aiolwm2m.http2``): one HTTP/2 connection (TLS
  with ALPN h2 for https; a PSK becomes an h2c bearer token); the server's requests arrive
  on the downlink stream the endpoint keeps open while registered.

Requests arriving on an own endpoint go to ``route`` (its site's only resource), so they
belong to the account the endpoint was opened for whoever else might know the address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.http2.bearer import bearer_token
from aiolwm2m.http2.client_endpoint import Http2ClientEndpoint, TlsSettings
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.security.dtls_client import DtlsClient
from aiolwm2m.security.errors import SecurityError
from aiolwm2m.security.tls_stream import TlsClientConnection
from aiolwm2m.transport.dispatch import RequestDispatcher
from aiolwm2m.transport.dtls import ClientSecurity
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_events import Disconnected, TcpConnectionEvent
from aiolwm2m.transport.tls import TlsClientSecurity

from .account_security import SecurityModeError, ServerTarget
from .endpoint import ClientDtlsEndpoint, ClientEndpoint, GatedEndpoint

log = logging.getLogger(__name__)

Route = Callable[[Message], RenderResult]


class _AccountResource(Resource):
    """The root of an own endpoint's site: every request goes to one account's handler."""

    observable = True

    def __init__(self, handler: Route) -> None:
        super().__init__()
        self.handler = handler

    def render(self, request: Message) -> RenderResult:
        return self.handler(request)


class ServerLink:
    """One server as the client reaches it."""

    def __init__(self, target: ServerTarget, endpoint: ClientEndpoint | ClientDtlsEndpoint
                 | TcpEndpoint | Http2ClientEndpoint, address: Any, *,
                 shared: bool = False, binding: str | None = None) -> None:
        self.target = target
        self.endpoint = endpoint
        self.address = address
        self.shared = shared
        self.closed = False
        #: The binding letter, when the transport is not the URI's (N: NIDD).
        self.binding = binding or target.binding
        self._unsubscribe: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<ServerLink {self.target}{' shared' if self.shared else ''}>"

    @property
    def dispatcher(self) -> RequestDispatcher:
        return self.endpoint.dispatcher

    @property
    def gated(self) -> GatedEndpoint | None:
        """The endpoint when it has a radio switch and traffic counters (UDP, DTLS)."""
        return self.endpoint if isinstance(self.endpoint, GatedEndpoint) else None

    async def request(self, message: Message, timeout: float | None = None) -> Message:
        return await self.endpoint.request(message, self.address, timeout=timeout)

    async def close(self) -> None:
        """Close an own endpoint (DTLS close_notify / TCP Release); the shared one stays."""
        if self.closed:
            return
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if not self.shared:
            await self.endpoint.close()


def _site(route: Route) -> Site:
    site = Site(well_known_core=False)
    site.add((), _AccountResource(route), prefix=True)
    return site


def check_credentials(target: ServerTarget) -> None:
    """Build (and drop) the security engine's state for ``target`` once, so that unusable
    key material fails here, with the reason, and not inside the transport's I/O."""
    if target.credentials is None:
        return
    try:
        if target.uri.reliable:
            TlsClientConnection(target.credentials, server_name=target.server_name,
                                server_public_key=target.server_public_key).close()
        else:
            DtlsClient(target.credentials, server_public_key=target.server_public_key,
                       server_name=target.server_name).close()
    except SecurityError as e:
        raise SecurityModeError(f"{target.uri}: {e.reason}") from None


async def open_link(target: ServerTarget, shared: ClientEndpoint, route: Route, *,
                    host: str, params: TransmissionParameters,
                    on_lost: Callable[[], None] | None = None) -> ServerLink:
    """The link for ``target``: the shared UDP endpoint for coap://, else a new endpoint
    whose incoming requests go to ``route``. ``on_lost`` is called when a TCP connection
    to the server ends without our asking."""
    uri = target.uri
    if uri.scheme == "coap":
        return ServerLink(target, shared, await shared.resolve(uri.host, uri.port),
                          shared=True)
    check_credentials(target)
    if uri.scheme in ("http2", "https"):
        return _http2_link(target, route, on_lost, host)
    if uri.scheme == "coaps":
        assert target.credentials is not None
        dtls = await ClientDtlsEndpoint.open(host, 0, site=_site(route), params=params)
        try:
            address = await dtls.secure((uri.host, uri.port), ClientSecurity(
                target.credentials, server_public_key=target.server_public_key,
                server_name=target.server_name))
        except BaseException:
            await dtls.close()
            raise
        return ServerLink(target, dtls, address)
    tls = None
    if target.credentials is not None:
        tls = TlsClientSecurity(target.credentials, server_name=target.server_name,
                                server_public_key=target.server_public_key)
    tcp = await TcpEndpoint.create(listen=False, site=_site(route), tls_client=tls)
    link = ServerLink(target, tcp, (uri.host, uri.port))
    if on_lost is not None:
        lost = on_lost

        def connection_event(event: TcpConnectionEvent) -> None:
            if isinstance(event, Disconnected) and not link.closed:
                log.info("connection to %s ended: %s", uri, event.reason)
                lost()

        link._unsubscribe = tcp.events.subscribe(connection_event)
    return link


def _http2_link(target: ServerTarget, route: Route, on_lost: Callable[[], None] | None,
                host: str) -> ServerLink:
    uri = target.uri
    # The client's own address, when it names one of the server's family (not a wildcard).
    local = host if host not in ("", "::", "0.0.0.0") and (":" in host) == (
        ":" in uri.host) else None
    credentials = target.credentials
    tls = bearer = None
    if credentials is not None and uri.scheme == "https":
        tls = TlsSettings(credentials, server_name=target.server_name,
                          server_public_key=target.server_public_key)
    elif isinstance(credentials, PskCredentials):
        bearer = bearer_token(credentials.identity, credentials.key)
    endpoint = Http2ClientEndpoint(uri.host, uri.port, site=_site(route), tls=tls,
                                   bearer=bearer, on_lost=on_lost, local_host=local)
    return ServerLink(target, endpoint, endpoint.address)
