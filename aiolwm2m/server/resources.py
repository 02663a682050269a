"""The CoAP resources of the server's interfaces: /rd (registration) and /dp (Send)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiolwm2m.coap.errors import MethodNotAllowed, NotFound
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource

from .registry import Origin

if TYPE_CHECKING:
    from .server import LwM2MServer


class PeerIdentities(Protocol):
    def identity_of(self, remote: tuple[object, ...]) -> str | None:
        """The principal the transport authenticated for ``remote``
        (``aiolwm2m.principals``), None for NoSec."""


def origin_of(request: Message, transport: str, identities: PeerIdentities) -> Origin:
    remote = request.remote
    # IPv6 peers come as (host, port, flowinfo, scope_id); registrations keep host and port.
    address = remote if len(remote) == 2 else (remote[0], remote[1])
    return Origin(transport, address, identities.identity_of(remote))


class RegistrationInterface(Resource):
    """``POST /rd`` registers, ``POST /rd/{id}`` updates, ``DELETE /rd/{id}`` deregisters."""

    link_params = (("rt", "core.rd"), ("ct", "40"))
    eager = True

    def __init__(self, server: LwM2MServer, transport: str, identities: PeerIdentities
                 ) -> None:
        super().__init__()
        self.server = server
        self.transport = transport
        self.identities = identities

    def render_post(self, request: Message) -> RenderResult:
        sub = self.subpath(request)
        origin = origin_of(request, self.transport, self.identities)
        if not sub:
            return self.server._register(request, origin)
        if len(sub) == 1:
            return self.server._update(sub[0], request, origin)
        raise NotFound("no such registration")

    async def render_delete(self, request: Message) -> Message:
        sub = self.subpath(request)
        if len(sub) != 1:
            raise MethodNotAllowed("DELETE applies to a registration, /rd/{id}")
        origin = origin_of(request, self.transport, self.identities)
        return await self.server._deregister(sub[0], request, origin)


class SendInterface(Resource):
    """``POST /dp``: the client's Send operation (LwM2M 1.1)."""

    eager = True

    def __init__(self, server: LwM2MServer, transport: str, identities: PeerIdentities
                 ) -> None:
        super().__init__()
        self.server = server
        self.transport = transport
        self.identities = identities

    async def render_post(self, request: Message) -> Message:
        origin = origin_of(request, self.transport, self.identities)
        return await self.server._send_received(request, origin)

