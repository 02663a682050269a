"""The RD's CoAP resources, one set per transport: ``/rd-lookup/ep``, ``/rd-lookup/res``
(observable) and ``/.well-known/rd`` (simple registration). ``/rd`` itself is the server's
registration interface (``aiolwm2m.server.resources``), shared with LwM2M.

Observed lookups are re-evaluated after each change (debounced by the service) and a
notification goes out only to observers whose answer changed. Observers are bounded per
transport and per peer address; a lookup beyond either bound is answered without Observe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.linkformat import Link
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource

from .authorization import PeerOrigin
from .errors import RdError
from .groups import RD_GROUP_TYPE
from .service import LookupAnswers, RequestSender, ResourceDirectory

if TYPE_CHECKING:
    from aiolwm2m.coap.observe import Observation

OriginOf = Callable[[Message], PeerOrigin]

#: What /.well-known/core announces for each interface (RFC 9176 section 9.2).
LOOKUP_RESOURCE_TYPES = {"ep": "core.rd-lookup-ep", "res": "core.rd-lookup-res"}


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=12).digest()


def _host(peer: Any) -> Any:
    return peer[0] if isinstance(peer, tuple) and peer else peer


class LookupResource(Resource):
    """``GET /rd-lookup/{ep,res}?<filters>&page&count``, observable."""

    def __init__(self, rd: ResourceDirectory, kind: str, origin_of: OriginOf) -> None:
        super().__init__()
        self.rd = rd
        self.kind = kind
        self.origin_of = origin_of
        self.link_params = (("rt", LOOKUP_RESOURCE_TYPES[kind]), ("ct", "40"), ("obs", None))
        self.observable = True
        #: What each observer was last sent, by (peer, token).
        self._sent: dict[tuple[Any, bytes], bytes] = {}
        # The digest of the answer just rendered, until admits_observer() takes it.
        self._rendered: tuple[tuple[Any, bytes], bytes] | None = None
        rd.watchers.append(self.recheck)

    def links(self) -> list[Link]:
        """Its own link, and for endpoint lookups the lookup of RD groups (RFC 9176
        Appendix A: ``et=core.rd-group``) under ``rt="core.rd-group"``."""
        own = super().links()
        if self.kind != "ep":
            return own
        return [*own, Link(f"{own[0].target}?et={RD_GROUP_TYPE}",
                           [("rt", RD_GROUP_TYPE), ("ct", "40"), ("obs", None)])]

    def render_get(self, request: Message) -> RenderResult:
        response = self.rd.lookup(self.kind, request, self.origin_of(request))
        if request.observe == 0:
            self._rendered = ((request.remote, request.token), _digest(response.payload))
        return response

    def admits_observer(self, request: Message) -> bool:
        """Asked by the dispatcher right after render_get, for a successful Observe=0."""
        rendered, self._rendered = self._rendered, None
        if not self._room_for(request):
            return False
        if rendered is not None and rendered[0] == (request.remote, request.token):
            self._sent[rendered[0]] = rendered[1]
        self.rd.watch_lwm2m(True)
        return True

    def _observers(self) -> list[Observation]:
        seen: list[Observation] = []

        def count(obs: Observation) -> bool:
            seen.append(obs)
            return False

        self.notify(count)
        return seen

    def _room_for(self, request: Message) -> bool:
        limits = self.rd.limits
        peer, query = request.remote, request.uri_query
        # An observer asking again for the same lookup replaces its entry (RFC 7641).
        others = [o for o in self._observers()
                  if not (o.peer == peer and o.request.uri_query == query)]
        if len(others) >= limits.max_lookup_observers:
            return False
        host = _host(peer)
        return sum(1 for o in others if _host(o.peer) == host) < (
            limits.max_lookup_observers_per_address)

    def recheck(self, answers: LookupAnswers) -> bool:
        """After a change: notify the observers whose lookup answers differently now
        (``answers`` holds what this pass found already, on any transport). Returns
        whether this resource has observers at all."""
        if self.site is None:
            return False
        live: set[tuple[Any, bytes]] = set()
        sent = self._sent
        kind = self.kind

        def changed(obs: Observation) -> bool:
            key = (obs.peer, obs.token)
            live.add(key)
            query = tuple(obs.request.uri_query)
            try:
                # The policy may have changed since the observer came: ask again.
                scope = self.rd.authorizer.lookup_scope(self.origin_of(obs.request))
            except RdError:
                return True  # rendering it again answers (and ends it with) the refusal
            answer_key = (kind, query, None if scope is None else scope.key)
            if answer_key in answers:
                digest = answers[answer_key]
            else:
                try:
                    digest = _digest(self.rd.lookup_text(kind, list(query), scope).encode())
                except Exception:
                    digest = None
                answers[answer_key] = digest
            if digest is None:
                return True  # rendering it again answers (and ends it with) the error
            if sent.get(key) == digest:
                return False
            sent[key] = digest
            return True

        self.notify(changed)
        for key in [k for k in sent if k not in live]:
            del sent[key]
        return bool(live)


class SimpleRegistrationResource(Resource):
    """``POST /.well-known/rd?ep&d&lt&et&<extra>`` (RFC 9176 section 5.1)."""

    def __init__(self, rd: ResourceDirectory, origin_of: OriginOf, transport: RequestSender
                 ) -> None:
        super().__init__()
        self.rd = rd
        self.origin_of = origin_of
        self.transport = transport

    def links(self) -> list[Any]:
        return []  # found at its well-known path, not listed

    async def render_post(self, request: Message) -> Message:
        return await self.rd.simple_register(request, self.origin_of(request), self.transport)
