"""A scripted Resource Directory for the registerer's tests, on real sockets.

It serves the RD interfaces under paths no real RD uses (``/dir`` for registration,
``/find/ep`` for endpoint lookup, announced in /.well-known/core), so that discovery is
really exercised; records every request it gets; and answers with scripted codes when a
test queues them (``fail("update", Code.NOT_FOUND)``), otherwise as RFC 9176 says. A
simple registration (``POST /.well-known/rd``) makes it fetch the node's /.well-known/core
from the address the request came from, before answering 2.04, as aiocoap's RD does.

Transports: coap (UDP), coaps (DTLS with the given server credentials), coap+tcp, coaps+tcp.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import Link, format_link_format, parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.security import ServerCredentials
from aiolwm2m.transport.dtls import DtlsEndpoint
from aiolwm2m.transport.site import RenderResult, Resource, Site, WellKnownCore
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsServerSecurity
from aiolwm2m.transport.udp import UdpEndpoint


@dataclass
class Seen:
    """One request as the RD saw it."""

    method: int
    path: tuple[str, ...]
    query: list[str]
    payload: bytes
    content_format: int | None
    identity: str | None = None


@dataclass
class Entry:
    query: list[str]
    links: list[Link]


@dataclass
class RdState:
    seen: list[Seen] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)
    #: Scripted answers per operation ("register", "update", "delete", "simple"): each
    #: queued (code, max_age) is used for one request instead of the normal answer.
    script: dict[str, collections.deque[tuple[int, int | None]]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque))
    next_id: int = 1
    fetched: list[bytes] = field(default_factory=list)
    endpoint: Any = None

    def fail(self, operation: str, code: int, times: int = 1, max_age: int | None = None
             ) -> None:
        for _ in range(times):
            self.script[operation].append((code, max_age))

    def of(self, method: int, path: tuple[str, ...] | None = None) -> list[Seen]:
        return [s for s in self.seen if s.method == method
                and (path is None or s.path == path)]

    def _scripted(self, request: Message, operation: str) -> Message | None:
        queue = self.script.get(operation)
        if not queue:
            return None
        code, max_age = queue.popleft()
        response = request.response(code)
        if max_age is not None:
            response.max_age = max_age
        return response

    def record(self, request: Message) -> None:
        remote = request.remote
        identity = self.endpoint.identity_of(remote) if self.endpoint is not None else None
        self.seen.append(Seen(request.code, tuple(request.uri_path), list(request.uri_query),
                              bytes(request.payload), request.content_format, identity))

    def _key(self, query: list[str]) -> str:
        items = dict(q.partition("=")[::2] for q in query)
        return f"{items.get('ep')}/{items.get('d')}"

    def register(self, request: Message, links: list[Link]) -> str:
        key = self._key(request.uri_query)
        for location, entry in self.entries.items():
            if self._key(entry.query) == key:
                entry.query, entry.links = list(request.uri_query), links
                return location
        location = str(self.next_id)
        self.next_id += 1
        self.entries[location] = Entry(list(request.uri_query), links)
        return location


class Directory(Resource):
    """``/dir`` (register) and ``/dir/N`` (update, read, delete)."""

    link_params = (("rt", "core.rd"), ("ct", "40"))

    def __init__(self, state: RdState) -> None:
        super().__init__()
        self.state = state

    def render(self, request: Message) -> RenderResult:
        self.state.record(request)
        sub = self.subpath(request)
        if not sub:
            if request.code != Code.POST:
                return request.response(Code.METHOD_NOT_ALLOWED)
            scripted = self.state._scripted(request, "register")
            if scripted is not None:
                return scripted
            location = self.state.register(request, parse_link_format(request.payload))
            response = request.response(Code.CREATED)
            response.location_path = ("dir", location)
            return response
        location = sub[0]
        operation = {Code.POST: "update", Code.DELETE: "delete"}.get(request.code, "read")
        scripted = self.state._scripted(request, operation)
        if scripted is not None:
            return scripted
        entry = self.state.entries.get(location)
        if entry is None:
            return request.response(Code.NOT_FOUND)
        if request.code == Code.POST:
            return request.response(Code.CHANGED)
        if request.code == Code.DELETE:
            del self.state.entries[location]
            return request.response(Code.DELETED)
        return request.response(Code.CONTENT, format_link_format(entry.links).encode(), 40)


class EndpointLookup(Resource):
    link_params = (("rt", "core.rd-lookup-ep"), ("ct", "40"))

    def __init__(self, state: RdState) -> None:
        super().__init__()
        self.state = state

    def render_get(self, request: Message) -> RenderResult:
        self.state.record(request)
        wanted = set(request.uri_query)
        links = [Link(f"/dir/{loc}", [(k, v) for k, _, v in (q.partition("=") for q in e.query)])
                 for loc, e in self.state.entries.items() if wanted <= set(e.query)]
        return request.response(Code.CONTENT, format_link_format(links).encode(), 40)


class SimpleRegistration(Resource):
    def __init__(self, state: RdState) -> None:
        super().__init__()
        self.state = state

    async def render_post(self, request: Message) -> Message:
        self.state.record(request)
        scripted = self.state._scripted(request, "simple")
        if scripted is not None:
            return scripted
        fetch = Message.request(Code.GET, (".well-known", "core"))
        answer = await self.state.endpoint.request(fetch, request.remote, timeout=5.0)
        self.state.fetched.append(bytes(answer.payload))
        self.state.register(request, parse_link_format(answer.payload))
        return request.response(Code.CHANGED)


class RecordedWellKnownCore(WellKnownCore):
    def __init__(self, state: RdState) -> None:
        super().__init__()
        self.state = state

    def render_get(self, request: Message) -> RenderResult:
        self.state.record(request)
        return super().render_get(request)


def rd_site(state: RdState) -> Site:
    site = Site(well_known_core=False)
    site.add(".well-known/core", RecordedWellKnownCore(state))
    site.add("dir", Directory(state), prefix=True)
    site.add("find/ep", EndpointLookup(state))
    site.add(".well-known/rd", SimpleRegistration(state))
    return site


@dataclass
class RunningRd:
    state: RdState
    endpoint: UdpEndpoint | TcpEndpoint
    scheme: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.endpoint.port}"


@asynccontextmanager
async def scripted_rd(scheme: str = "coap", credentials: ServerCredentials | None = None
                      ) -> AsyncIterator[RunningRd]:
    state = RdState()
    site = rd_site(state)
    endpoint: UdpEndpoint | TcpEndpoint
    if scheme == "coap":
        endpoint = await UdpEndpoint.create("127.0.0.1", 0, site=site)
    elif scheme == "coaps":
        endpoint = await DtlsEndpoint.create("127.0.0.1", 0, site=site,
                                             server_credentials=credentials)
    else:
        tls = TlsServerSecurity(credentials) if credentials is not None else None
        endpoint = await TcpEndpoint.create("127.0.0.1", 0, site=site, tls_server=tls)
    state.endpoint = endpoint
    try:
        yield RunningRd(state, endpoint, scheme)
    finally:
        await endpoint.close()
