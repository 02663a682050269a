"""What a registering node serves at /.well-known/core: the links it registers.

A simple registration (RFC 9176 section 5.1) carries no links: the RD fetches them from the
node's /.well-known/core, over the endpoint the registration came from. When the node
serves a :class:`Site` of its own, that site's /.well-known/core answers instead, and its
resources are what the node registers unless it names links itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import Forbidden
from aiolwm2m.coap.linkformat import Link, format_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource, Site, WellKnownCore

from .messages import LINK_FORMAT


class RegisteredLinks(Resource):
    """/.well-known/core serving whatever ``links()`` returns now (so that a change of
    the registered links shows at once), filtered by ``?name=value`` as RFC 6690 says.

    Only to peers ``allowed`` accepts (the RD): over NoSec UDP anyone can forge a
    request's source, and a link list sent to a forged victim would amplify the forger's
    traffic; everyone else gets an empty 4.03."""

    link_params = (("ct", "40"),)

    def __init__(self, links: Callable[[], Sequence[Link]],
                 allowed: Callable[[Message], bool] = lambda request: True) -> None:
        super().__init__()
        self._links = links
        self._allowed = allowed

    def render_get(self, request: Message) -> RenderResult:
        if not self._allowed(request):
            raise Forbidden()
        links = list(self._links())
        for item in request.uri_query:
            name, _, value = item.partition("=")
            links = [link for link in links if _matches(link, name, value)]
        return request.response(Code.CONTENT, format_link_format(links).encode("utf-8"),
                                LINK_FORMAT)


def _matches(link: Link, name: str, pattern: str) -> bool:
    """RFC 6690 section 4.1 filtering, a trailing ``*`` matching any suffix."""
    if name == "href":
        candidates = [link.target]
    elif link.has(name):
        candidates = link.values(name) or [v or "" for v in link.get_all(name)]
    else:
        return False
    if pattern.endswith("*"):
        return any(c.startswith(pattern[:-1]) for c in candidates)
    return pattern in candidates


def links_site(links: Callable[[], Sequence[Link]],
               allowed: Callable[[Message], bool] = lambda request: True) -> Site:
    """A site serving only /.well-known/core with ``links()``, to ``allowed`` peers."""
    site = Site(well_known_core=False)
    site.add(".well-known/core", RegisteredLinks(links, allowed))
    return site


def site_links(site: Site) -> list[Link]:
    """The links a site lists at /.well-known/core (its discovery resource excepted)."""
    return [link for r in site.resources()
            if not isinstance(r, WellKnownCore | RegisteredLinks) for link in r.links()]
