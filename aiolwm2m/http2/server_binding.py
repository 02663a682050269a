"""The LwM2M server's HTTP/2 transport: the endpoint wired to the registry, the queue, the
refusals and the security store.

* Presence is the queue mode of HTTP/2: a device with its downlink stream open is awake,
  one without is asleep (requests for it wait in the persisted queue and flow when the
  stream opens), whatever its binding says; ``Awake``/``Sleeping`` events follow the stream.
* A registration's downlink stream may be opened, and its requests answered, only by the
  peer that may Update it: over this transport, as the same authenticated principal, or for
  NoSec from its address (a new connection sends an Update first).
* h2c devices may authenticate with a bearer token made of their PSK identity and key
  (:mod:`.bearer`; trusted networks only), https devices with TLS (X.509, RPK or PSK) as
  over coaps+tcp: either way the principal is the one the security store binds.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aiolwm2m.security.config import ServerCredentials, TlsServerConfig
from aiolwm2m.server.events import Deregistered, Event, Expired, Registered
from aiolwm2m.server.registration_params import RegistrationError
from aiolwm2m.server.registry import NO_REGISTRATION, Origin
from aiolwm2m.server.resources import RegistrationInterface, SendInterface
from aiolwm2m.server.security_binding import StoreCredentialLookup
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp_link import peer_key
from aiolwm2m.transport.tls import TlsServerSecurity

from .bearer import bearer_principal
from .server_connection import H2Peer
from .server_endpoint import Http2Endpoint

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer
    from aiolwm2m.store.records import Registration

ALPN_H2 = "h2"


class ServerRegistrations:
    """:class:`~.server_endpoint.RegistrationAccess` answered by an LwM2M server."""

    def __init__(self, server: LwM2MServer, transport: str) -> None:
        self.server = server
        self.transport = transport
        self.endpoint: Http2Endpoint | None = None
        self._lookup = StoreCredentialLookup(server.stores.security)

    def registration_of(self, remote: Any) -> str | None:
        return self.server.registry.id_for_address(self.transport, peer_key(remote))

    def check(self, registration_id: str, peer: H2Peer, identity: str | None,
              query: list[str]) -> tuple[int, str] | None:
        server = self.server
        origin = Origin(self.transport, peer, identity)
        reg = server.registry.by_id.get(registration_id)
        try:
            if reg is None:
                raise RegistrationError(404, NO_REGISTRATION, reason="unknown-registration",
                                        detail=f"downlink or answer for unknown registration "
                                               f"{registration_id[:40]!r}")
            server.registry._check_owner(reg, origin, query)
        except RegistrationError as e:
            server._refused(e, origin)
            return 404, e.message
        return None

    def carries_registration(self, peer: H2Peer) -> bool:
        return self.registration_of(peer) is not None

    def presence_changed(self, registration_id: str, present: bool) -> None:
        reg = self.server.registry.by_id.get(registration_id)
        if reg is not None:
            self.server.queue.presence_changed(reg, present)

    def present(self, reg: Registration) -> bool:
        return self.endpoint is not None and self.endpoint.has_downlink(reg.id)

    def bearer_principal(self, credentials: str) -> str | None:
        return bearer_principal(credentials, self._lookup.psk_key)

    def refused(self, reason: str, peer: str, detail: str) -> None:
        self.server.refusals.refused(transport=self.transport, reason=reason, peer=peer,
                                     detail=detail)

    def event(self, event: Event) -> None:
        """Registrations that end take their downlink stream with them."""
        endpoint = self.endpoint
        if endpoint is None:
            return
        if isinstance(event, Deregistered):
            endpoint.registration_ended(event.registration.id, "de-registered")
        elif isinstance(event, Expired):
            endpoint.registration_ended(event.registration.id, "lifetime expired")
        elif isinstance(event, Registered) and event.replaced is not None:
            endpoint.registration_ended(event.replaced.id, "replaced by a new registration")


async def open_http2_transport(server: LwM2MServer, name: str, host: str, port: int, *,
                               tls: bool | None = None) -> Http2Endpoint:
    """The HTTP/2 listener of ``server``: https when the server has an X.509 certificate
    (``tls`` None) or ``tls`` says so, else h2c with prior knowledge."""
    cfg = server.config
    if tls is None:
        tls = cfg.dtls_x509 is not None
    security = None
    if tls:
        security = TlsServerSecurity(
            ServerCredentials(StoreCredentialLookup(server.stores.security), psk=True,
                              rpk=cfg.dtls_rpk, x509=cfg.dtls_x509),
            TlsServerConfig(alpn=(ALPN_H2,), alpn_required=True))
    access = ServerRegistrations(server, name)
    site = Site(well_known_core=False)
    streams = (cfg.tcp_port is not None) + (cfg.tls_port is not None) + 1
    endpoint = await Http2Endpoint.create(
        host, port, site=site, access=access, limits=cfg.http2_limits,
        stream_limits=cfg.tcp_limits.fit_descriptors(streams), tls_server=security)
    access.endpoint = endpoint
    site.add("rd", RegistrationInterface(server, name, endpoint), prefix=True)
    site.add("dp", SendInterface(server, name, endpoint))
    server.queue.presence[name] = access.present
    unsubscribe = server.events.subscribe(access.event)
    endpoint.on_close = functools.partial(_detach, server, name, unsubscribe)
    return endpoint


def _detach(server: LwM2MServer, name: str, unsubscribe: Any) -> None:
    server.queue.presence.pop(name, None)
    if callable(unsubscribe):
        unsubscribe()
