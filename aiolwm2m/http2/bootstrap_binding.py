"""A Bootstrap-Server's HTTP/2 listener: Bootstrap-Request and the bootstrap session over
one device-opened connection, as the LwM2M server's HTTP/2 binding does registrations.

* The device sends ``POST /bs?ep=EP`` (answered 204, CoAP's 2.04), then opens its downlink
  stream ``GET /bs/EP/requests`` on the same connection; the session's requests
  (Bootstrap-Discover, -Read, -Write, -Delete and Bootstrap-Finish, ``POST /bs``) come as
  envelopes on it and are answered ``POST /bs/EP/responses/{identity}``.
* The session starts as the 204 goes out, before the device can open its stream: its first
  requests wait for the stream (within the Bootstrap-Server's request timeout).
* Only the connection that made the Bootstrap-Request may open the endpoint's downlink
  stream or answer its requests. Who may bootstrap an endpoint at all is the
  Bootstrap-Server's decision, as on its other transports: https authenticates with TLS,
  h2c with a bearer token made of the endpoint's bootstrap PSK (:mod:`.bearer`).

:func:`open_bootstrap_http2` adds the listener to a running
:class:`~aiolwm2m.bootstrap.BootstrapServer` under the transport name ``http2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiolwm2m.bootstrap.events import BootstrapEvent, SessionFailed, SessionFinished
from aiolwm2m.bootstrap.server import BootstrapCredentialLookup
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.tcp_link import PeerKey, peer_key

from .bearer import bearer_principal
from .limits import DEFAULT_HTTP2_LIMITS, Http2Limits
from .server_connection import H2Peer
from .server_endpoint import Http2Endpoint

if TYPE_CHECKING:
    from aiolwm2m.bootstrap.server import BootstrapServer

TRANSPORT = "http2"
NO_SESSION = "no bootstrap session"


class BootstrapSessions:
    """:class:`~.server_endpoint.RegistrationAccess` answered by a Bootstrap-Server: the
    "registration" is the endpoint name of a Bootstrap-Request, bound to its connection."""

    def __init__(self, server: BootstrapServer, transport: str) -> None:
        self.server = server
        self.transport = transport
        self.endpoint: Http2Endpoint | None = None
        self._lookup = BootstrapCredentialLookup(server, transport)
        #: Connection address -> the endpoint name it asked to be bootstrapped as.
        self._by_peer: dict[PeerKey, str] = {}

    def requested(self, peer: Any, endpoint_name: str) -> None:
        self._by_peer[peer_key(peer)] = endpoint_name

    def registration_of(self, remote: Any) -> str | None:
        return self._by_peer.get(peer_key(remote))

    def check(self, registration_id: str, peer: H2Peer, identity: str | None,
              query: list[str]) -> tuple[int, str] | None:
        if self._by_peer.get(peer_key(peer)) == registration_id:
            return None
        self.refused("bootstrap-not-owner", f"{peer[0]}:{peer[1]}",
                     f"downlink or answer for {registration_id[:40]!r} from a connection that "
                     "did not ask to bootstrap it")
        return 404, NO_SESSION

    def carries_registration(self, peer: H2Peer) -> bool:
        return peer_key(peer) in self._by_peer

    def presence_changed(self, registration_id: str, present: bool) -> None:
        """Nothing waits on presence here: the session's requests wait for the stream."""

    def bearer_principal(self, credentials: str) -> str | None:
        return bearer_principal(credentials, self._lookup.psk_key)

    def refused(self, reason: str, peer: str, detail: str) -> None:
        self.server._refuse(self.transport, reason, None, peer, detail)

    def event(self, event: BootstrapEvent) -> None:
        """A session that ends takes its downlink stream and its binding with it."""
        if isinstance(event, SessionFinished | SessionFailed):
            name = event.endpoint
            for key in [k for k, v in self._by_peer.items() if v == name]:
                del self._by_peer[key]
            if self.endpoint is not None:
                self.endpoint.registration_ended(
                    name, "bootstrap finished" if isinstance(event, SessionFinished)
                    else "bootstrap failed")


class _BootstrapRequest(Resource):
    """``POST /bs``: the Bootstrap-Server's own handling, after noting which connection
    asked for which endpoint."""

    def __init__(self, server: BootstrapServer, sessions: BootstrapSessions) -> None:
        super().__init__()
        self.server = server
        self.sessions = sessions

    def render_post(self, request: Message) -> Message:
        response = self.server._bootstrap_request(request, self.sessions.transport)
        name = request.query_params().get("ep")
        if name:
            self.sessions.requested(request.remote, name)
        return response


async def open_bootstrap_http2(server: BootstrapServer, host: str, port: int, *,
                               limits: Http2Limits = DEFAULT_HTTP2_LIMITS,
                               transport: str = TRANSPORT) -> Http2Endpoint:
    """Serve Bootstrap-Requests over HTTP/2 (h2c with prior knowledge) on ``host:port``
    for the running ``server``; it closes with the server."""
    sessions = BootstrapSessions(server, transport)
    site = Site(well_known_core=False)
    site.add("bs", _BootstrapRequest(server, sessions))
    endpoint = await Http2Endpoint.create(host, port, site=site, access=sessions,
                                          limits=limits, device_root="bs",
                                          await_downlink=True)
    sessions.endpoint = endpoint
    unsubscribe = server.events.subscribe(sessions.event)
    endpoint.on_close = unsubscribe if callable(unsubscribe) else None
    server.transports[transport] = endpoint
    return endpoint
