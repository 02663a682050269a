"""Registrations: Register, Update, De-register and lifetime expiry over a RegistrationStore."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Sequence
from typing import ClassVar, NamedTuple, Protocol

from mypy_extensions import mypyc_attr

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m.coap_mapping import DeviceContext
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.store.interfaces import Commit, RegistrationStore
from aiolwm2m.store.records import Address, Registration

from .config import ServerConfig
from .deadlines import Deadlines
from .registration_params import (
    RegistrationError,
    parse_register,
    parse_update,
)

log = logging.getLogger(__name__)

#: What a peer hears when its Update or De-register names no registration it may act on:
#: the same words and code (4.04) whether the id is unknown or belongs to someone else, so
#: a refusal confirms nothing to a guesser, and a client whose address really changed
#: registers again, as clients do when an Update gets 4.04.
NO_REGISTRATION = "no such registration"


class Origin(NamedTuple):
    """Where a registration request came from: the transport, the peer address and the
    principal the transport authenticated (``aiolwm2m.principals``; None for NoSec). A
    named tuple, not a frozen dataclass: one is made per request, and frozen dataclasses
    are slow to build."""

    transport: str
    address: Address
    identity: str | None = None


def describe_peer(origin: Origin) -> str:
    """``host:port``, with ``as <principal>`` for an authenticated peer (logs only)."""
    where = f"{origin.address[0]}:{origin.address[1]}"
    return where if origin.identity is None else f"{where} as {origin.identity}"


class Denial(NamedTuple):
    """An authorizer's refusal, answered with 4.03: ``reason`` is the refusal token
    (``aiolwm2m.server.refusals``), ``detail`` the operator's explanation (may name
    identities), ``message`` the few words the peer gets (never naming identities)."""

    reason: str
    detail: str
    message: str = "forbidden"


class Authorizer(Protocol):
    def authorize(self, endpoint: str, origin: Origin,
                  current: Registration | None) -> Denial | None:
        """None to accept, or why to refuse (answered with 4.03)."""


# Compiled (aiolwm2m.compiled), yet subclassed by authorizers that are not.
@mypyc_attr(allow_interpreted_subclasses=True)
class DefaultAuthorizer:
    """Accepts any endpoint name, except that a name registered by an authenticated
    identity can only be registered again by that same identity."""

    def authorize(self, endpoint: str, origin: Origin,
                  current: Registration | None) -> Denial | None:
        if current is not None and current.identity is not None and (
                current.identity != origin.identity):
            return Denial("wrong-identity",
                          f"endpoint {endpoint!r} is bound to {current.identity}, not to "
                          f"{origin.identity or 'an unauthenticated peer'}")
        return None


class RegistrationIds:
    """Unguessable registration ids: 72 random bits each, drawn from the OS 256 ids at a
    time so that a Register costs no system call. The id is a capability (whoever knows
    /rd/{id} may update a NoSec registration), so it must not be predictable."""

    BATCH: ClassVar[int] = 256

    def __init__(self) -> None:
        self._ready: list[str] = []

    def __call__(self) -> str:
        if not self._ready:
            # 9 random bytes are exactly 12 base64 characters, so the text of a batch
            # splits into ids without padding.
            text = base64.urlsafe_b64encode(os.urandom(9 * self.BATCH)).decode("ascii")
            self._ready = [text[i:i + 12] for i in range(0, len(text), 12)]
        return self._ready.pop()


class Registry:
    def __init__(self, store: RegistrationStore, config: ServerConfig, model: ModelRegistry,
                 authorizer: Authorizer | None = None) -> None:
        self.store = store
        self.config = config
        self.model = model
        self.authorizer: Authorizer = authorizer or DefaultAuthorizer()
        self.expiry = Deadlines()
        self._by_address: dict[tuple[str, Address], str] = {}
        # Synchronous views of the live registrations, for lookups on every request.
        self.by_id: dict[str, Registration] = {}
        self.by_endpoint: dict[str, Registration] = {}
        self._contexts: dict[tuple[object, ...], DeviceContext] = {}
        #: Contexts of end devices behind gateways, by their registration id (filled by
        #: ``aiolwm2m.gateway.directory``): looked at only when the shared ones miss.
        self.end_device_contexts: dict[str, DeviceContext] = {}
        self.new_id = RegistrationIds()

    # -- bookkeeping ----------------------------------------------------------------------

    def _index(self, reg: Registration) -> None:
        self.by_id[reg.id] = reg
        self.by_endpoint[reg.endpoint] = reg
        self._by_address[(reg.transport, reg.address)] = reg.id
        self.expiry.schedule(reg.id, reg.expires_at)

    def _unindex(self, reg: Registration) -> None:
        self.by_id.pop(reg.id, None)
        current = self.by_endpoint.get(reg.endpoint)
        if current is not None and current.id == reg.id:
            del self.by_endpoint[reg.endpoint]
        key = (reg.transport, reg.address)
        if self._by_address.get(key) == reg.id:
            del self._by_address[key]
        self.expiry.cancel(reg.id)

    def _reindex(self, old: Registration, new: Registration) -> None:
        """After an Update: same id and endpoint; the address and the deadline may move."""
        self.by_id[new.id] = new
        self.by_endpoint[new.endpoint] = new
        if new.address != old.address or new.transport != old.transport:
            key = (old.transport, old.address)
            if self._by_address.get(key) == old.id:
                del self._by_address[key]
            self._by_address[(new.transport, new.address)] = new.id
        self.expiry.schedule(new.id, new.expires_at)

    async def load(self) -> list[Registration]:
        """Index stored registrations; returns those whose lifetime ran out while down."""
        now = self.config.clock()
        expired = []
        for reg in await self.store.all():
            if reg.expired(now):
                await self.store.remove(reg.id)
                expired.append(reg)
            else:
                self._index(reg)
        return expired

    def context(self, reg: Registration) -> DeviceContext:
        """What requests to ``reg`` are encoded with. Devices of one kind announce the same
        version, formats and objects, so they share one context (and its pinned model)."""
        key = (reg.lwm2m_version, reg.content_formats, reg.root_path, reg.objects)
        ctx = self._contexts.get(key)
        if ctx is None:
            end_device = self.end_device_contexts.get(reg.id)
            if end_device is not None:
                return end_device
            # The version each listed object was announced in; none announced means 1.0.
            versions = {o.object_id: o.version or "1.0" for o in reg.objects
                        if o.instance_id is None}
            ctx = DeviceContext.for_client(self.model, reg.lwm2m_version, reg.content_formats,
                                           reg.root_path, versions)
            if len(self._contexts) >= 1024:
                self._contexts.clear()
            self._contexts[key] = ctx
        return ctx

    def id_for_address(self, transport: str, address: Address) -> str | None:
        return self._by_address.get((transport, address))

    # -- the registration interface -------------------------------------------------------

    def register(self, query: list[str], payload: bytes, content_format: int | None,
                 origin: Origin) -> tuple[Registration, Registration | None, Commit]:
        """Register; the new registration is live at once and durable when the returned
        commit completes (the caller holds the 2.01 until then)."""
        try:
            params = parse_register(query, payload, content_format,
                                    accepted_versions=self.config.lwm2m_versions,
                                    default_lifetime=self.config.default_lifetime,
                                    max_objects=self.config.max_objects_per_registration,
                                    max_payload=self.config.max_registration_payload)
        except RegistrationError as e:
            e.endpoint = _endpoint_in(query)
            raise
        current = self.by_endpoint.get(params.endpoint)
        denial = self.authorizer.authorize(params.endpoint, origin, current)
        if denial is not None:
            raise RegistrationError(Code.FORBIDDEN, denial.message, reason=denial.reason,
                                    detail=denial.detail, endpoint=params.endpoint)
        lifetime = max(params.lifetime, self.config.min_lifetime)
        now = self.config.clock()
        links = params.object_links
        reg = Registration(
            id=self.new_id(), endpoint=params.endpoint, address=origin.address,
            lifetime=lifetime, lwm2m_version=params.lwm2m_version, binding=params.binding,
            queue_mode=params.queue_mode, sms=params.sms, transport=origin.transport,
            identity=origin.identity, links=links.links, objects=links.objects,
            root_path=links.root_path, content_formats=links.content_formats,
            registered_at=now, updated_at=now, extra=params.extra)
        replaced, commit = self.store.add_nowait(reg)
        if replaced is not None:
            self._unindex(replaced)
        self._index(reg)
        return reg, replaced, commit

    def update(self, registration_id: str, query: list[str], payload: bytes,
               content_format: int | None, origin: Origin
               ) -> tuple[Registration, Registration, Commit]:
        """Update; live at once, durable when the returned commit completes."""
        current = self.by_id.get(registration_id)
        if current is None:
            raise _unknown(registration_id)
        self._check_owner(current, origin, query)
        try:
            params = parse_update(query, payload, content_format, current.lwm2m_version,
                                  current.endpoint,
                                  max_objects=self.config.max_objects_per_registration,
                                  max_payload=self.config.max_registration_payload)
        except RegistrationError as e:
            e.endpoint = current.endpoint
            raise
        changes: dict[str, object] = {"updated_at": self.config.clock(),
                                      "address": origin.address}
        if params.lifetime is not None:
            changes["lifetime"] = max(params.lifetime, self.config.min_lifetime)
        if params.binding is not None:
            changes["binding"] = params.binding
        if params.queue_mode is not None:
            changes["queue_mode"] = params.queue_mode
        if params.sms is not None:
            changes["sms"] = params.sms
        if params.object_links is not None:
            links = params.object_links
            changes.update(links=links.links, objects=links.objects, root_path=links.root_path,
                           content_formats=links.content_formats)
        updated = current.with_changes(**changes)
        commit = self.store.update_nowait(updated)
        self._reindex(current, updated)
        return updated, current, commit

    def undo(self, current: Registration, previous: Registration | None) -> None:
        """The write that made ``current`` live never committed (its client got 5.00):
        put ``previous`` back (the registration an Update changed), or forget ``current``
        (a new one; a registration it replaced stays replaced). Nothing if ``current`` has
        moved on meanwhile. The store's own rewrite is not waited for: its writer failed."""
        if self.by_id.get(current.id) is not current:
            return
        if previous is not None:
            _settle(self.store.update_nowait(previous))
            self._reindex(current, previous)
        else:
            _settle(self.store.remove_nowait(current.id)[1])
            self._unindex(current)

    async def deregister(self, registration_id: str, origin: Origin) -> Registration:
        current = self.by_id.get(registration_id)
        if current is None:
            raise _unknown(registration_id)
        self._check_owner(current, origin, ())
        # Store and index change together, before the commit is waited for: a request
        # arriving meanwhile sees the registration gone in both.
        _, commit = self.store.remove_nowait(registration_id)
        self._unindex(current)
        if commit is not None:
            await commit
        return current

    def _check_owner(self, reg: Registration, origin: Origin, query: Sequence[str]) -> None:
        """Only the registration's own client may Update or De-register it: over the same
        transport, and as the same authenticated identity (from any address: DTLS and TLS
        prove who it is) or, for NoSec, from the same address. With
        ``allow_address_change`` a NoSec Update from a new address is taken when it names
        the registration's endpoint (``ep=``), for clients behind a NAT that rebinds."""
        if reg.transport != origin.transport:
            raise _not_owner(reg, "wrong-transport",
                             f"registered over {reg.transport}, asked over {origin.transport}"
                             f" from {describe_peer(origin)}")
        if reg.identity is not None:
            if reg.identity != origin.identity:
                raise _not_owner(reg, "wrong-identity",
                                 f"bound to {reg.identity}, asked from "
                                 f"{describe_peer(origin)}")
        elif reg.address != origin.address:
            if not (self.config.allow_address_change and f"ep={reg.endpoint}" in query):
                raise _not_owner(reg, "not-owner",
                                 f"registered from {reg.address[0]}:{reg.address[1]}, asked "
                                 f"from {describe_peer(origin)}")
            log.info("%s (registration %s) moved from %s:%s to %s:%s over %s", reg.endpoint,
                     reg.id, reg.address[0], reg.address[1], origin.address[0],
                     origin.address[1], reg.transport)

    async def expire_due(self) -> list[Registration]:
        """Remove the registrations whose lifetime has passed; returns them once the
        removals are durable."""
        gone: list[Registration] = []
        commits: set[asyncio.Future[None]] = set()
        now = self.config.clock()
        for rid in self.expiry.pop_due(now):
            reg = self.by_id.get(rid)
            if reg is None:
                continue
            if not reg.expired(now):
                self.expiry.schedule(rid, reg.expires_at)
                continue
            _, commit = self.store.remove_nowait(rid)
            self._unindex(reg)
            if commit is not None:
                commits.add(commit)
            gone.append(reg)
        if commits:
            await asyncio.gather(*commits)
        return gone


def _unknown(registration_id: str) -> RegistrationError:
    return RegistrationError(Code.NOT_FOUND, NO_REGISTRATION, reason="unknown-registration",
                             detail=f"no registration {registration_id[:40]!r}")


def _not_owner(reg: Registration, reason: str, detail: str) -> RegistrationError:
    return RegistrationError(Code.NOT_FOUND, NO_REGISTRATION, reason=reason,
                             detail=f"registration {reg.id}: {detail}", endpoint=reg.endpoint)


def _endpoint_in(query: Sequence[str]) -> str | None:
    """The ep= of a Register that failed to parse, for the operator's log (shortened)."""
    for item in query:
        if item.startswith("ep="):
            return item[3:67]
    return None


def _settle(commit: Commit) -> None:
    """Let a commit nobody waits for fail without "exception never retrieved" noise."""
    if commit is not None:
        commit.add_done_callback(lambda f: f.cancelled() or f.exception())
