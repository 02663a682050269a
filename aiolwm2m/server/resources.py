"""The CoAP resources of the server's interfaces: /rd (LwM2M and Resource Directory
registration), /dp (Send), and the RD's lookups and simple registration.

``/rd`` serves two registration interfaces: LwM2M's and RFC 9176's. Which one a Register is
for is decided by :func:`aiolwm2m.rd.routing.is_lwm2m_register` (LwM2M parameters make it
LwM2M, exactly as before); a location ``/rd/{id}`` belongs to whichever made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapRequestError, MethodNotAllowed, NotFound
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber
from aiolwm2m.rd.errors import RdError
from aiolwm2m.rd.links import LINK_FORMAT, etag_of, format_links
from aiolwm2m.rd.lwm2m_view import object_links
from aiolwm2m.rd.patch import apply_patch, parse_patch
from aiolwm2m.rd.resources import LookupResource, SimpleRegistrationResource
from aiolwm2m.rd.routing import is_lwm2m_register
from aiolwm2m.rd.service import RequestSender
from aiolwm2m.transport.site import HeldResponse, RenderResult, Resource, Site

from .registration_params import RegistrationError
from .registry import NO_REGISTRATION, Origin

if TYPE_CHECKING:
    from aiolwm2m.store.records import Registration

    from .server import LwM2MServer

_IF_MATCH = int(OptionNumber.IF_MATCH)


class PeerIdentities(Protocol):
    def identity_of(self, remote: tuple[object, ...]) -> str | None:
        """The principal the transport authenticated for ``remote``
        (``aiolwm2m.principals``), None for NoSec."""


class ServedTransport(PeerIdentities, RequestSender, Protocol):
    """A transport endpoint as the interfaces use it: who its peers are, and (for simple
    registration) a way to send them a request."""


def origin_of(request: Message, transport: str, identities: PeerIdentities) -> Origin:
    remote = request.remote
    # IPv6 peers come as (host, port, flowinfo, scope_id); registrations keep host and port.
    address = remote if len(remote) == 2 else (remote[0], remote[1])
    return Origin(transport, address, identities.identity_of(remote))


def install_interfaces(server: LwM2MServer, site: Site, transport: str,
                       endpoint: ServedTransport) -> None:
    """Everything the server serves on one transport's site."""
    site.add("rd", RegistrationInterface(server, transport, endpoint), prefix=True)
    site.add("dp", SendInterface(server, transport, endpoint))
    rd = server.rd
    if rd is not None:
        def origin(request: Message) -> Origin:
            return origin_of(request, transport, endpoint)

        site.add("rd-lookup/ep", LookupResource(rd, "ep", origin))
        site.add("rd-lookup/res", LookupResource(rd, "res", origin))
        site.add(".well-known/rd", SimpleRegistrationResource(rd, origin, endpoint))


class RegistrationInterface(Resource):
    """``POST /rd`` registers, ``POST /rd/{id}`` updates, ``DELETE /rd/{id}`` deregisters;
    ``GET /rd/{id}`` reads a registration's links and ``PATCH``/``iPATCH /rd/{id}`` change
    them (the RD's link-patch extension, ``aiolwm2m.rd.patch``), for LwM2M and generic
    registrations alike."""

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
        rd = self.server.rd
        if not sub:
            if rd is None or is_lwm2m_register(request.options, request.payload):
                return self.server._register(request, origin)
            return rd.register(request, origin)
        if len(sub) == 1:
            if rd is not None and sub[0] not in self.server.registry.by_id and rd.has(sub[0]):
                return rd.update(sub[0], request, origin)
            return self.server._update(sub[0], request, origin)
        raise NotFound("no such registration")

    def render_delete(self, request: Message) -> RenderResult:
        sub = self.subpath(request)
        if len(sub) != 1:
            raise MethodNotAllowed("DELETE applies to a registration, /rd/{id}")
        origin = origin_of(request, self.transport, self.identities)
        rd = self.server.rd
        if rd is not None and sub[0] not in self.server.registry.by_id and rd.has(sub[0]):
            return rd.delete(sub[0], request, origin)
        return self.server._deregister(sub[0], request, origin)

    def render_get(self, request: Message) -> RenderResult:
        rid, origin, lwm2m = self._target(request)
        if lwm2m is None:
            return self.server.rd.read(rid, request, origin)  # type: ignore[union-attr]
        if request.accept not in (None, LINK_FORMAT):
            raise CoapRequestError("registrations are link format (40)", Code.NOT_ACCEPTABLE)
        response = request.response(Code.CONTENT, lwm2m.links.encode(), LINK_FORMAT)
        response.etag = etag_of(lwm2m.links)
        return response

    def render_patch(self, request: Message) -> RenderResult:
        rid, origin, lwm2m = self._target(request)
        if lwm2m is None:
            return self.server.rd.patch(rid, request, origin)  # type: ignore[union-attr]
        return self._patch_lwm2m(lwm2m, request, origin)

    render_ipatch = render_patch

    def _target(self, request: Message) -> tuple[str, Origin, Registration | None]:
        """The registration ``/rd/{id}`` names: an LwM2M one (its own client only, as for
        Update), or a generic one (None; the RD checks who asks). 4.04 otherwise."""
        sub = self.subpath(request)
        if len(sub) != 1:
            raise MethodNotAllowed("GET and PATCH apply to a registration, /rd/{id}")
        rid = sub[0]
        origin = origin_of(request, self.transport, self.identities)
        server = self.server
        reg = server.registry.by_id.get(rid)
        if reg is not None:
            try:
                server.registry._check_owner(reg, origin, ())
            except RegistrationError as e:
                raise server._refused(e, origin) from None
            return rid, origin, reg
        if server.rd is not None and server.rd.has(rid):
            return rid, origin, None
        raise NotFound(NO_REGISTRATION)

    def _patch_lwm2m(self, reg: Registration, request: Message, origin: Origin
                     ) -> RenderResult:
        """A link patch on an LwM2M registration adds or removes objects and instances:
        the patched list goes through the registry as an Update with that object list
        would (validated, persisted, the ``updated`` event, the REST API), without the
        client registering again."""
        server = self.server
        limits = server.config
        try:
            wanted = [v for n, v in request.options if n == _IF_MATCH]
            if wanted and b"" not in wanted and etag_of(reg.links) not in wanted:
                raise RdError(Code.PRECONDITION_FAILED, "If-Match: the registration changed")
            patch = parse_patch(request.payload, request.content_format,
                                max_links=limits.max_objects_per_registration + 1,
                                max_bytes=limits.max_registration_payload)
            links = format_links(apply_patch(object_links(reg.links), patch))
        except RdError as e:
            raise server._refused(RegistrationError(e.code, e.message, reason=e.reason,
                                                    detail=e.detail, endpoint=reg.endpoint),
                                  origin) from None
        update = request.copy()
        update.code = Code.POST
        update.uri_query = []
        update.payload = links.encode()
        update.content_format = LINK_FORMAT
        result = server._update(reg.id, update, origin)
        etag = etag_of(links)
        if isinstance(result, Message):
            result.etag = etag
        elif isinstance(result, HeldResponse):
            result.response.etag = etag
        return result


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
