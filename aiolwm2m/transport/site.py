"""Server-side resources and their routing by Uri-Path, shared by every transport."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, Union

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import MethodNotAllowed, NotFound
from aiolwm2m.coap.linkformat import Link, format_link_format
from aiolwm2m.coap.message import Message, split_path
from aiolwm2m.coap.options import OptionNumber

if TYPE_CHECKING:
    from aiolwm2m.coap.observe import Observation


class HeldResponse:
    """A response that must not leave before ``until`` completes: the reply to a write
    that may only be acknowledged once it is durable. The dispatcher keeps it without a
    coroutine or Task, so a thousand replies waiting for one group commit cost a list.

    ``then`` runs once ``until`` succeeded, just before the response is sent (say, to
    announce the write). If ``until`` fails, ``undo`` runs (say, to take back what the
    write changed in memory) and the client gets 5.00 instead.
    """

    __slots__ = ("response", "then", "undo", "until")

    def __init__(self, response: Message, until: asyncio.Future[None],
                 then: Callable[[], None] | None = None,
                 undo: Callable[[], None] | None = None) -> None:
        self.response = response
        self.until = until
        self.then = then
        self.undo = undo

    async def resolved(self) -> Message:
        """Wait for it the ordinary way (for paths that serve few requests)."""
        try:
            await self.until
        except BaseException:
            if self.undo is not None:
                self.undo()
            raise
        if self.then is not None:
            self.then()
        return self.response


RenderResult = Union[Message, HeldResponse, Awaitable[Message | HeldResponse]]  # noqa: UP007
RouteKey = tuple[bytes, ...]
_URI_PATH = int(OptionNumber.URI_PATH)


class Resource:
    """Override ``render_<method>``; each returns a response message or an awaitable of one.

    Raise :class:`aiolwm2m.coap.errors.CoapRequestError` subclasses to answer with an error.
    """

    observable = False
    #: Run ``async`` handlers without a Task (see RequestDispatcher._eager): cheaper, but
    #: ``asyncio.current_task()`` is None inside them.
    eager = False
    #: Parameters for /.well-known/core, e.g. ``[("rt", "temperature"), ("ct", "0")]``.
    link_params: Sequence[tuple[str, str | None]] = ()

    def __init__(self) -> None:
        self.site: Site | None = None
        self.route: RouteKey = ()

    def render(self, request: Message) -> RenderResult:
        handler = _HANDLERS.get(request.code)
        if handler is None:
            raise MethodNotAllowed(f"method {request.code} not supported")
        result: RenderResult = getattr(self, handler)(request)
        return result

    def render_get(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("GET not allowed")

    def render_post(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("POST not allowed")

    def render_put(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("PUT not allowed")

    def render_delete(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("DELETE not allowed")

    def render_fetch(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("FETCH not allowed")

    def render_patch(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("PATCH not allowed")

    def render_ipatch(self, request: Message) -> RenderResult:
        raise MethodNotAllowed("iPATCH not allowed")

    def admits_observer(self, request: Message) -> bool:
        """Whether a successful GET/FETCH with Observe=0 adds its client as an observer
        (asked after :meth:`render`). False answers it without an Observe option, which
        tells the client it was not added (RFC 7641 section 4.1): say, a pub/sub topic
        at its max-subscribers."""
        return True

    def subpath(self, request: Message) -> tuple[str, ...]:
        """For a prefix resource: the Uri-Path segments below its route."""
        return request.uri_path[len(self.route):]

    def links(self) -> list[Link]:
        """Entries for /.well-known/core; prefix resources may list their children."""
        params = list(self.link_params)
        if self.observable and not any(n == "obs" for n, _ in params):
            params.append(("obs", None))
        return [Link("/" + "/".join(s.decode() for s in self.route), params)]

    def notify(self, accept: Callable[[Observation], bool] | None = None) -> None:
        """The resource changed: send notifications to (some of) its observers."""
        if self.site is not None:
            self.site.notify(self, accept)


_HANDLERS: dict[int, str] = {
    Code.GET: "render_get",
    Code.POST: "render_post",
    Code.PUT: "render_put",
    Code.DELETE: "render_delete",
    Code.FETCH: "render_fetch",
    Code.PATCH: "render_patch",
    Code.IPATCH: "render_ipatch",
}


class Notifier(Protocol):
    """What a site needs from each transport dispatcher that serves it."""

    def notify(self, resource: Resource, accept: Callable[[Observation], bool] | None
               ) -> None: ...


class WellKnownCore(Resource):
    link_params = (("ct", "40"),)

    def render_get(self, request: Message) -> RenderResult:
        assert self.site is not None
        links = [link for r in self.site.resources() if r is not self for link in r.links()]
        filters = [q.partition("=") for q in request.uri_query]
        for name, _, value in filters:
            links = [link for link in links if _matches(link, name, value)]
        return request.response(Code.CONTENT, format_link_format(links).encode(), 40)


def _matches(link: Link, name: str, pattern: str) -> bool:
    """RFC 6690 section 4.1 query filtering, with a trailing ``*`` as prefix match."""
    if name == "href":
        candidates: list[str] = [link.target]
    else:
        candidates = link.values(name) or [v or "" for v in link.get_all(name)]
        if not link.has(name):
            return False
    if pattern.endswith("*"):
        return any(c.startswith(pattern[:-1]) for c in candidates)
    return pattern in candidates


class Site:
    """Routes requests to resources by exact path, or by longest registered prefix."""

    def __init__(self, *, well_known_core: bool = True) -> None:
        self._exact: dict[RouteKey, Resource] = {}
        self._prefix: dict[RouteKey, Resource] = {}
        self._longest_prefix = 0
        self._notifiers: list[Notifier] = []
        if well_known_core:
            self.add(".well-known/core", WellKnownCore())

    def add(self, path: str | Sequence[str], resource: Resource, *, prefix: bool = False
            ) -> Resource:
        segments = split_path(path) if isinstance(path, str) else tuple(path)
        key = tuple(s.encode() for s in segments)
        resource.site = self
        resource.route = key
        (self._prefix if prefix else self._exact)[key] = resource
        if prefix:
            self._longest_prefix = max(self._longest_prefix, len(key))
        return resource

    def remove(self, path: str | Sequence[str]) -> None:
        segments = split_path(path) if isinstance(path, str) else tuple(path)
        key = tuple(s.encode() for s in segments)
        for table in (self._exact, self._prefix):
            r = table.pop(key, None)
            if r is not None:
                r.site = None

    def resources(self) -> Iterable[Resource]:
        yield from self._exact.values()
        yield from self._prefix.values()

    def find(self, request: Message) -> Resource:
        key = tuple([v for n, v in request.options if n == _URI_PATH])
        r = self._exact.get(key)
        if r is not None:
            return r
        if self._prefix:
            for n in range(min(len(key), self._longest_prefix), -1, -1):
                r = self._prefix.get(key[:n])
                if r is not None:
                    return r
        # Fixed, never the path: a reply echoing the request is an amplifier (RFC 7252
        # section 11.3), and the path is the sender's to know.
        raise NotFound("no such resource")

    def attach(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    def detach(self, notifier: Notifier) -> None:
        if notifier in self._notifiers:
            self._notifiers.remove(notifier)

    def notify(self, resource: Resource, accept: Callable[[Observation], bool] | None = None
               ) -> None:
        for n in list(self._notifiers):
            n.notify(resource, accept)
