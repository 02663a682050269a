"""LwM2M registrations as lookups see them.

An LwM2M registration keeps its own record, behaviour and wire form (``/rd`` answers it as
before); lookups show it like any endpoint:

* ``ep`` its endpoint name, no ``d`` (LwM2M has no sectors), ``base`` the address and
  scheme it registered over (``coap://[2001:db8::1]:56830``), ``et="oma.lwm2m"``, and its
  LwM2M parameters as attributes: ``lwm2m`` (version), ``b`` (binding), ``Q`` (queue mode)
  and the other parameters it registered with;
* its links are its object list as it sent it (``</>;rt="oma.lwm2m"``, ``</3/0>``, ...),
  so ``/rd-lookup/res?ep=dev-1`` lists its objects and instances as absolute URIs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Protocol

from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
from aiolwm2m.store.rd_records import RdLink
from aiolwm2m.store.records import Registration

from .lookup import Entry
from .uri import base_from_address

#: The endpoint type LwM2M registrations carry in lookups.
LWM2M_ENDPOINT_TYPE = "oma.lwm2m"


class LwM2MRegistrations(Protocol):
    """The server's registry, as far as the RD reads it."""

    @property
    def by_id(self) -> Mapping[str, Registration]: ...

    @property
    def by_endpoint(self) -> Mapping[str, Registration]: ...


@functools.lru_cache(maxsize=1024)
def object_links(text: str) -> tuple[RdLink, ...]:
    """A registration's object list as links (shared by every device that sent the same
    list; the registry accepted it, so it parses)."""
    try:
        return tuple(RdLink(link.target, tuple(link.params)) for link in parse_link_format(text))
    except LinkFormatError:
        return ()


def lwm2m_entry(reg: Registration) -> Entry:
    base = base_from_address(reg.transport, reg.address)
    attrs: list[tuple[str, str | None]] = [
        ("ep", reg.endpoint), ("base", base), ("et", LWM2M_ENDPOINT_TYPE),
        ("lwm2m", reg.lwm2m_version), ("b", reg.binding)]
    if reg.queue_mode:
        attrs.append(("Q", None))
    attrs.extend(reg.extra)
    return Entry(f"/rd/{reg.id}", base, tuple(attrs), object_links(reg.links))
