"""The Resource Directory service: the directory, its store, its refusals and its replies.

Register, update, patch and delete answer without a coroutine, as LwM2M's Register does:
the change is live (and visible to lookups) at once, the reply is held until the store's
group commit carries it (``HeldResponse``), and a failed commit takes it back and answers
5.00. Lookup observers hear of a change once it is durable.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError, CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber
from aiolwm2m.store.interfaces import Commit, StoreWriter
from aiolwm2m.store.rd_policy_store import RdPolicyStore
from aiolwm2m.store.rd_records import RdLink, RdRegistration
from aiolwm2m.store.rd_store import RdStore
from aiolwm2m.store.sqlite_writer import WRITER_OK
from aiolwm2m.transport.site import HeldResponse, RenderResult

from .authorization import (
    DELETE,
    PATCH,
    READ,
    REGISTER,
    UPDATE,
    CredentialsOf,
    LookupScope,
    PeerOrigin,
    PolicyAuthorizer,
    RdAuthorizer,
)
from .config import DEFAULT_RD_LIMITS, RdLimits
from .directory import DeadlineWheel, Directory
from .errors import RdError, bad_request
from .groups import RD_GROUP_TYPE, check_member_links, group_members, is_group
from .links import LINK_FORMAT, check_size, format_links, parse_links, rd_etag
from .lookup import (
    LookupQuery,
    format_endpoint,
    format_resource,
    parse_lookup,
    resource_matches,
)
from .lwm2m_view import LwM2MRegistrations
from .params import RdRegisterParams, merged_extra, parse_rd_register, parse_rd_update
from .patch import apply_patch, parse_patch
from .policy import DEFAULT_POLICY, PolicyError, RdPolicy, parse_policy, policy_to_dict
from .uri import base_from_address

log = logging.getLogger(__name__)
_IF_MATCH = int(OptionNumber.IF_MATCH)
_NO_REGISTRATION = "no such registration"
#: How long after a change lookup observers are told (changes in between are one).
NOTIFY_DELAY = 0.1
#: A pass over observed lookups that took T seconds is followed by none for this many T.
PASS_COST_FACTOR = 10.0
#: The answers (their digests; None: refused) of the lookups one notification pass has
#: evaluated, by (ep or res, query, whose scope: None for unrestricted lookups): shared by
#: the transports.
LookupAnswers = dict[tuple[str, tuple[str, ...], str | None], bytes | None]
_LWM2M_CHANGES = frozenset({"registered", "updated", "deregistered", "expired"})


class RefusalSink(Protocol):
    def refused(self, *, transport: str, reason: str, endpoint: str | None = None,
                detail: str = "", peer: str | None = None) -> None: ...


class RequestSender(Protocol):
    """What a simple registration needs of the transport it came over."""

    async def request(self, request: Message, remote: Any, *, timeout: float | None = None,
                      block_szx: int = 6) -> Message: ...


class RdIds:
    """Unguessable locations, 72 random bits each, like LwM2M registration ids: the
    location of a NoSec registration is what lets its holder change it."""

    BATCH: ClassVar[int] = 256

    def __init__(self) -> None:
        self._ready: list[str] = []

    def __call__(self) -> str:
        if not self._ready:
            text = base64.urlsafe_b64encode(os.urandom(9 * self.BATCH)).decode("ascii")
            self._ready = [text[i:i + 12] for i in range(0, len(text), 12)]
        return self._ready.pop()


def describe(origin: PeerOrigin) -> str:
    where = f"{origin.address[0]}:{origin.address[1]}"
    return where if origin.identity is None else f"{where} as {origin.identity}"


class ResourceDirectory:
    def __init__(self, store: RdStore, expiry: DeadlineWheel, *,
                 limits: RdLimits = DEFAULT_RD_LIMITS,
                 clock: Callable[[], float],
                 refusals: RefusalSink,
                 lwm2m: LwM2MRegistrations | None = None,
                 authorizer: RdAuthorizer | None = None,
                 security: CredentialsOf | None = None,
                 policy_store: RdPolicyStore | None = None,
                 writer: StoreWriter | None = None,
                 subscribe_lwm2m: Callable[[Callable[[Any], None]], Callable[[], None]]
                 | None = None) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock
        self.refusals = refusals
        self.writer = writer
        self.lwm2m = lwm2m
        self.directory = Directory(expiry, lwm2m if limits.lwm2m_in_lookups else None)
        #: The authorisation policy (CRD-004) in force, its origin ("default", "config" or
        #: "api") and when it was set; see set_policy.
        self.policy_authorizer = PolicyAuthorizer(lwm2m, security=security,
                                                  held_sectors=self.directory.sectors_of)
        self.authorizer: RdAuthorizer = authorizer or self.policy_authorizer
        self.policy_store = policy_store
        self.policy_source = "default"
        self.policy_updated_at: float | None = None
        self.new_id = RdIds()
        #: Called (debounced) after the directory changed: the lookup resources re-check
        #: their observers. Each returns whether it still has any.
        self.watchers: list[Callable[[LookupAnswers], bool]] = []
        self._notify_timer: asyncio.TimerHandle | None = None
        self._next_pass_at = 0.0
        self._subscribe_lwm2m = subscribe_lwm2m
        self._unsubscribe_lwm2m: Callable[[], None] | None = None
        #: Simple registrations fetching now, per transport and per source address.
        self._fetching: dict[str, set[str]] = {}

    async def load(self) -> int:
        """Index the stored registrations; those whose lifetime ran out while the server
        was down are removed. Returns how many are live."""
        now = self.clock()
        for reg in self.store.all():
            if reg.expired(now):
                await self.store.remove(reg.id)
            else:
                self.directory.put(reg, None)
        return len(self.directory)

    # -- the authorisation policy ----------------------------------------------------------

    @property
    def policy(self) -> RdPolicy:
        return self.policy_authorizer.policy

    async def load_policy(self, configured: RdPolicy | None) -> None:
        """At start: the configured policy (the server's TOML) when there is one, else the
        one last set through the REST API, else the default."""
        if configured is not None:
            self._apply_policy(configured, "config", self.clock())
            return
        stored = self.policy_store.get() if self.policy_store is not None else None
        if stored is None:
            return
        document, updated_at = stored
        try:
            self._apply_policy(parse_policy(document), "api", updated_at)
        except PolicyError as e:
            log.warning("the stored RD policy is not valid (%s): the default policy applies",
                        e)

    async def set_policy(self, policy: RdPolicy | None) -> None:
        """Replace the policy (None: back to the default), durably first: a policy that
        could not be stored is not applied."""
        now = self.clock()
        if self.policy_store is not None:
            if policy is None:
                await self.policy_store.clear()
            else:
                await self.policy_store.put(policy_to_dict(policy), now)
        self._apply_policy(policy or DEFAULT_POLICY, "api" if policy is not None else "default",
                           now)

    def _apply_policy(self, policy: RdPolicy, source: str, when: float) -> None:
        self.policy_authorizer.policy = policy
        self.policy_source = source
        self.policy_updated_at = when
        log.info("RD policy from %s: anonymous registration %s, anonymous lookup %s, sector "
                 "lookup %s, names bound to credentials %s, %d identity rules", source,
                 _on(policy.anonymous_register), _on(policy.anonymous_lookup),
                 _on(policy.sector_lookup), _on(policy.bind_credentials),
                 len(policy.identities))
        self.changed()  # observed lookups may now see more or less

    def close(self) -> None:
        if self._notify_timer is not None:
            self._notify_timer.cancel()
            self._notify_timer = None
        if self._unsubscribe_lwm2m is not None:
            self._unsubscribe_lwm2m()
            self._unsubscribe_lwm2m = None

    def has(self, registration_id: str) -> bool:
        return registration_id in self.directory.by_id

    def get(self, registration_id: str) -> RdRegistration | None:
        return self.directory.by_id.get(registration_id)

    def group(self, name: str, sector: str | None = None) -> RdRegistration | None:
        """The RD group registration (``et=core.rd-group``) of that name and sector."""
        rid = self.directory.by_key.get((name, sector or ""))
        reg = self.directory.by_id.get(rid) if rid is not None else None
        return reg if reg is not None and RD_GROUP_TYPE in reg.endpoint_types else None

    def group_members(self, name: str, sector: str | None = None
                      ) -> list[tuple[str, str | None]] | None:
        """The (ep, d) an RD group's member links name; None when there is no such group."""
        reg = self.group(name, sector)
        return None if reg is None else group_members(reg)

    # -- refusals -------------------------------------------------------------------------

    def _refused(self, e: RdError, origin: PeerOrigin) -> CoapRequestError:
        self.refusals.refused(transport=origin.transport, reason=e.reason,
                              endpoint=e.endpoint, detail=e.detail, peer=describe(origin))
        return CoapRequestError(e.message, e.code)

    def _unavailable(self, request: Message, origin: PeerOrigin) -> Message | None:
        """5.03 with Max-Age while the stores' writer restarts (SQLite) or Redis is
        unreachable (see LwM2M's Register)."""
        writer = self.writer
        if writer is None or writer.state == WRITER_OK:
            return None
        self.refusals.refused(transport=origin.transport, reason="store-unavailable",
                              detail=writer.last_error or "", peer=describe(origin))
        response = request.response(Code.SERVICE_UNAVAILABLE, b"store restarting", 0)
        response.max_age = int(writer.retry_after()) + 1
        return response

    def _current(self, registration_id: str, action: str, origin: PeerOrigin
                 ) -> RdRegistration:
        reg = self.directory.by_id.get(registration_id)
        if reg is None:
            raise RdError(Code.NOT_FOUND, _NO_REGISTRATION,
                          detail=f"no RD registration {registration_id[:40]!r}")
        denial = self.authorizer.authorize(action, reg.endpoint, reg.sector, origin, reg)
        if denial is not None:
            raise RdError(denial.code, denial.message, reason=denial.reason,
                          detail=f"{action} of {reg.id}: {denial.detail}",
                          endpoint=reg.endpoint)
        return reg

    # -- registration ---------------------------------------------------------------------

    def register(self, request: Message, origin: PeerOrigin) -> RenderResult:
        """``POST /rd?ep&d&lt&base&et&<extra>`` with link format: 2.01 + Location-Path."""
        unavailable = self._unavailable(request, origin)
        if unavailable is not None:
            return unavailable
        limits = self.limits
        try:
            params = parse_rd_register(request.uri_query,
                                       default_lifetime=limits.default_lifetime)
            # Before the links are parsed: a peer the policy refuses costs no more.
            self._admit(params, origin)
            links = parse_links(request.payload, request.content_format,
                                max_links=limits.max_links,
                                max_bytes=limits.max_registration_bytes)
            reg, previous, commit = self._register(params, links, origin, explicit_base=True,
                                                   admitted=True)
        except RdError as e:
            if e.endpoint is None:
                e.endpoint = _endpoint_in(request.uri_query)
            raise self._refused(e, origin) from None
        response = request.response(Code.CREATED)
        response.location_path = ("rd", reg.id)
        return self._held(response, reg, previous, commit)

    def _admit(self, params: RdRegisterParams, origin: PeerOrigin) -> RdRegistration | None:
        """RdError unless the policy lets ``origin`` register (ep, d); the registration
        it would replace otherwise."""
        directory = self.directory
        rid = directory.by_key.get((params.endpoint, params.sector or ""))
        current = directory.by_id.get(rid) if rid is not None else None
        denial = self.authorizer.authorize(REGISTER, params.endpoint, params.sector, origin,
                                           current)
        if denial is not None:
            raise RdError(denial.code, denial.message, reason=denial.reason,
                          detail=denial.detail, endpoint=params.endpoint)
        return current

    def _register(self, params: RdRegisterParams, links: tuple[RdLink, ...],
                  origin: PeerOrigin, *, explicit_base: bool, admitted: bool = False
                  ) -> tuple[RdRegistration, RdRegistration | None, Commit]:
        """``admitted``: _admit passed with nothing awaited since (else it runs here)."""
        if is_group(params.endpoint_types):
            check_member_links(links)
        directory = self.directory
        if admitted:
            rid = directory.by_key.get((params.endpoint, params.sector or ""))
            current = directory.by_id.get(rid) if rid is not None else None
        else:
            current = self._admit(params, origin)
        if current is None:
            self._check_room(origin, params.endpoint)
        now = self.clock()
        base = params.base if explicit_base and params.base is not None else (
            base_from_address(origin.transport, origin.address))
        reg = RdRegistration(
            id=current.id if current is not None else self._fresh_id(),
            endpoint=params.endpoint, sector=params.sector, lifetime=params.lifetime,
            base=base, base_explicit=explicit_base and params.base is not None,
            endpoint_types=params.endpoint_types, extra=params.extra, links=links,
            transport=origin.transport, address=(origin.address[0], origin.address[1]),
            identity=origin.identity, registered_at=now, updated_at=now,
            sequence=current.sequence if current is not None else directory.next_sequence())
        commit = self.store.put_nowait(reg)
        directory.put(reg, current)
        return reg, current, commit

    def _check_room(self, origin: PeerOrigin, endpoint: str) -> None:
        limits = self.limits
        if len(self.directory) >= limits.max_registrations:
            raise RdError(Code.SERVICE_UNAVAILABLE, "directory full", reason="rd-full",
                          detail=f"{limits.max_registrations} registrations", endpoint=endpoint)
        per_address = limits.max_registrations_per_address
        if origin.identity is None and per_address and (
                self.directory.per_address.get(origin.address[0], 0) >= per_address):
            raise RdError(Code.TOO_MANY_REQUESTS, "too many registrations from this address",
                          reason="rd-address-limit",
                          detail=f"{per_address} unauthenticated registrations from "
                          f"{origin.address[0]}", endpoint=endpoint)

    def _fresh_id(self) -> str:
        lwm2m = self.lwm2m.by_id if self.lwm2m is not None else {}
        while True:
            rid = self.new_id()
            if rid not in self.directory.by_id and rid not in lwm2m:
                return rid

    def _held(self, response: Message, reg: RdRegistration, previous: RdRegistration | None,
              commit: Commit, action: str = "registered") -> RenderResult:
        then = functools.partial(self._committed, action, reg, previous)
        if commit is None:
            then()
            return response
        return HeldResponse(response, commit, then,
                            functools.partial(self._undo, reg, previous))

    def _committed(self, action: str, reg: RdRegistration, previous: RdRegistration | None
                   ) -> None:
        level = logging.DEBUG if action in ("updated", "patched") else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "RD %s %s%s id=%s over %s from %s:%s lt=%d links=%d", action,
                    reg.endpoint, f" d={reg.sector}" if reg.sector is not None else "", reg.id,
                    reg.transport, reg.address[0], reg.address[1], reg.lifetime,
                    len(reg.links))
        if action != "updated" or previous is None or previous.links is not reg.links or (
                previous.base != reg.base or previous.extra != reg.extra
                or previous.endpoint_types != reg.endpoint_types):
            self.changed()

    def _undo(self, reg: RdRegistration, previous: RdRegistration | None) -> None:
        """The write that made ``reg`` live never committed (its client got 5.00): put
        back what was there, unless ``reg`` moved on meanwhile."""
        directory = self.directory
        if directory.by_id.get(reg.id) is not reg:
            return
        if previous is not None:
            _settle(self.store.put_nowait(previous))
            directory.put(previous, reg)
        else:
            _settle(self.store.remove_nowait(reg.id)[1])
            directory.drop(reg)

    # -- the registration resource --------------------------------------------------------

    def update(self, registration_id: str, request: Message, origin: PeerOrigin
               ) -> RenderResult:
        """``POST {location}?lt&base&et&<extra>``; a link-format body replaces the links."""
        unavailable = self._unavailable(request, origin)
        if unavailable is not None:
            return unavailable
        try:
            current = self._current(registration_id, UPDATE, origin)
            _check_if_match(request, current)
            updated = self._updated(current, request, origin)
        except RdError as e:
            raise self._refused(e, origin) from None
        commit = self.store.put_nowait(updated)
        self.directory.put(updated, current)
        return self._held(request.response(Code.CHANGED), updated, current, commit, "updated")

    def _updated(self, current: RdRegistration, request: Message, origin: PeerOrigin
                 ) -> RdRegistration:
        limits = self.limits
        try:
            params = parse_rd_update(request.uri_query, current.endpoint, current.sector)
        except RdError as e:
            e.endpoint = current.endpoint
            raise
        links = current.links
        if request.payload:
            links = parse_links(request.payload, request.content_format,
                                max_links=limits.max_links,
                                max_bytes=limits.max_registration_bytes)
        types = (params.endpoint_types if params.endpoint_types is not None
                 else current.endpoint_types)
        if is_group(types):
            check_member_links(links)
        if params.base is not None:
            base, explicit = params.base, True
        elif current.base_explicit:
            base, explicit = current.base, True
        else:  # RFC 9176: an implicit base follows the address the update came from
            base, explicit = base_from_address(origin.transport, origin.address), False
        return RdRegistration(
            id=current.id, endpoint=current.endpoint, sector=current.sector,
            lifetime=params.lifetime if params.lifetime is not None else current.lifetime,
            base=base, base_explicit=explicit,
            endpoint_types=types,
            extra=merged_extra(current.extra, params.extra), links=links,
            transport=origin.transport, address=(origin.address[0], origin.address[1]),
            identity=current.identity, registered_at=current.registered_at,
            updated_at=self.clock(), sequence=current.sequence)

    def read(self, registration_id: str, request: Message, origin: PeerOrigin) -> Message:
        """``GET {location}``: its links (filtered like a resource lookup when the query has
        filters), with the ETag that PATCH and update take in If-Match."""
        try:
            reg = self._current(registration_id, READ, origin)
            query = parse_lookup(request.uri_query, max_results=max(self.limits.max_links, 1))
        except RdError as e:
            raise self._refused(e, origin) from None
        _check_accept(request)
        links = reg.links
        if query.filters:
            entry = self.directory.entry(reg)
            links = tuple(link for link in links
                          if all(resource_matches(entry, link, f) for f in query.filters))
        start = query.page * query.size
        response = request.response(Code.CONTENT,
                                    format_links(links[start:start + query.size]).encode(),
                                    LINK_FORMAT)
        response.etag = rd_etag(reg)
        return response

    def patch(self, registration_id: str, request: Message, origin: PeerOrigin
              ) -> RenderResult:
        """``PATCH``/``iPATCH {location}`` with a link-patch document (:mod:`.patch`)."""
        unavailable = self._unavailable(request, origin)
        if unavailable is not None:
            return unavailable
        limits = self.limits
        try:
            current = self._current(registration_id, PATCH, origin)
            _check_if_match(request, current)
            patch = parse_patch(request.payload, request.content_format,
                                max_links=limits.max_links,
                                max_bytes=limits.max_registration_bytes)
            links = apply_patch(current.links, patch)
            check_size(links, max_links=limits.max_links,
                       max_bytes=limits.max_registration_bytes)
            if is_group(current.endpoint_types):
                check_member_links(links)
        except RdError as e:
            if e.endpoint is None and registration_id in self.directory.by_id:
                e.endpoint = self.directory.by_id[registration_id].endpoint
            raise self._refused(e, origin) from None
        updated = RdRegistration(
            id=current.id, endpoint=current.endpoint, sector=current.sector,
            lifetime=current.lifetime, base=current.base, base_explicit=current.base_explicit,
            endpoint_types=current.endpoint_types, extra=current.extra, links=links,
            transport=current.transport, address=current.address, identity=current.identity,
            registered_at=current.registered_at, updated_at=current.updated_at,
            sequence=current.sequence)
        commit = self.store.put_nowait(updated)
        self.directory.put(updated, current)
        response = request.response(Code.CHANGED)
        response.etag = rd_etag(updated)
        return self._held(response, updated, current, commit, "patched")

    def delete(self, registration_id: str, request: Message, origin: PeerOrigin
               ) -> RenderResult:
        """``DELETE {location}``: 2.02 once the removal is durable."""
        unavailable = self._unavailable(request, origin)
        if unavailable is not None:
            return unavailable
        try:
            current = self._current(registration_id, DELETE, origin)
            _check_if_match(request, current)
        except RdError as e:
            raise self._refused(e, origin) from None
        _, commit = self.store.remove_nowait(current.id)
        self.directory.drop(current)
        then = functools.partial(self._removed, current, "deleted")
        if commit is None:
            then()
            return request.response(Code.DELETED)
        return HeldResponse(request.response(Code.DELETED), commit, then,
                            functools.partial(self._restore, current))

    def _removed(self, reg: RdRegistration, why: str) -> None:
        log.info("RD %s %s%s id=%s", why, reg.endpoint,
                 f" d={reg.sector}" if reg.sector is not None else "", reg.id)
        self.changed()

    def _restore(self, reg: RdRegistration) -> None:
        if reg.id not in self.directory.by_id and reg.key not in self.directory.by_key:
            _settle(self.store.put_nowait(reg))
            self.directory.put(reg, None)

    async def remove(self, registration_id: str) -> RdRegistration | None:
        """Remove a registration (the REST API's DELETE); None if there is none."""
        reg = self.directory.by_id.get(registration_id)
        if reg is None:
            return None
        _, commit = self.store.remove_nowait(reg.id)
        self.directory.drop(reg)
        if commit is not None:
            await commit
        self._removed(reg, "removed")
        return reg

    # -- simple registration --------------------------------------------------------------

    async def simple_register(self, request: Message, origin: PeerOrigin,
                              transport: RequestSender) -> Message:
        """``POST /.well-known/rd?ep&d&lt&et&<extra>`` with no payload: the RD fetches the
        node's /.well-known/core from the address the request came from, registers what
        it lists with that address as base, and answers 2.04 (RFC 9176 section 5.1)."""
        unavailable = self._unavailable(request, origin)
        if unavailable is not None:
            return unavailable
        limits = self.limits
        try:
            params = parse_rd_register(request.uri_query,
                                       default_lifetime=limits.default_lifetime,
                                       base_allowed=False)
            if request.payload:
                raise bad_request("a simple registration has no payload")
            self._admit(params, origin)  # before fetching anything from the peer
        except RdError as e:
            e.endpoint = e.endpoint or _endpoint_in(request.uri_query)
            raise self._refused(e, origin) from None
        fetching = self._fetching.setdefault(origin.transport, set())
        host = str(origin.address[0])
        if host in fetching or len(fetching) >= limits.simple_registration_fetches:
            self.refusals.refused(transport=origin.transport, reason="rd-simple-busy",
                                  endpoint=params.endpoint, peer=describe(origin),
                                  detail=f"{len(fetching)} fetches in progress")
            response = request.response(Code.SERVICE_UNAVAILABLE, b"busy", 0)
            response.max_age = max(1, int(limits.simple_registration_timeout))
            return response
        fetching.add(host)
        try:
            links = await self._fetch_links(request, origin, transport, params.endpoint)
        finally:
            fetching.discard(host)
        try:
            reg, previous, commit = self._register(params, links, origin, explicit_base=False)
        except RdError as e:
            raise self._refused(e, origin) from None
        if commit is not None:
            try:
                await commit
            except BaseException:
                self._undo(reg, previous)
                raise
        self._committed("registered", reg, previous)
        return request.response(Code.CHANGED)

    async def _fetch_links(self, request: Message, origin: PeerOrigin,
                           transport: RequestSender, endpoint: str) -> tuple[RdLink, ...]:
        limits = self.limits
        get = Message.request(Code.GET, ".well-known/core", accept=LINK_FORMAT)
        try:
            async with asyncio.timeout(limits.simple_registration_timeout):
                answer = await transport.request(
                    get, request.remote, timeout=limits.simple_registration_timeout)
        except (TimeoutError, CoapError, OSError) as e:
            raise self._refused(RdError(
                Code.GATEWAY_TIMEOUT, "could not fetch /.well-known/core",
                reason="rd-simple-fetch-failed", endpoint=endpoint,
                detail=f"GET /.well-known/core: {str(e) or type(e).__name__}"), origin) from None
        if answer.code != Code.CONTENT:
            raise self._refused(RdError(
                Code.BAD_GATEWAY, "/.well-known/core did not answer 2.05",
                reason="rd-simple-fetch-failed", endpoint=endpoint,
                detail=f"GET /.well-known/core answered {answer.code >> 5}."
                f"{answer.code & 31:02d}"), origin)
        try:
            return parse_links(answer.payload, answer.content_format,
                               max_links=limits.max_links,
                               max_bytes=limits.max_registration_bytes)
        except RdError as e:
            raise self._refused(RdError(
                Code.BAD_GATEWAY, f"/.well-known/core: {e.message}",
                reason="rd-simple-bad-links", endpoint=endpoint, detail=e.detail),
                origin) from None

    # -- lookup ---------------------------------------------------------------------------

    def lookup(self, kind: str, request: Message, origin: PeerOrigin) -> Message:
        """``GET /rd-lookup/ep`` or ``/rd-lookup/res``: 2.05 link format, showing what the
        policy lets ``origin`` see; a refused lookup counts as a refusal of ``origin``."""
        try:
            query = parse_lookup(request.uri_query, max_results=self.limits.max_lookup_results)
            scope = self.authorizer.lookup_scope(origin)
            text = self._lookup_text(kind, query, scope)
        except RdError as e:
            raise self._refused(e, origin) from None
        _check_accept(request)
        return request.response(Code.CONTENT, text.encode(), LINK_FORMAT)

    def lookup_text(self, kind: str, query: list[str], scope: LookupScope | None = None
                    ) -> str:
        """The answer a CoAP lookup with ``query`` gets now, for an asker who sees
        ``scope`` (CoapRequestError if none)."""
        try:
            parsed = parse_lookup(query, max_results=self.limits.max_lookup_results)
            return self._lookup_text(kind, parsed, scope)
        except RdError as e:
            raise CoapRequestError(e.message, e.code) from None

    def _lookup_text(self, kind: str, query: LookupQuery, scope: LookupScope | None) -> str:
        # CoAP peers need not authenticate: a lookup looks at most at max_lookup_scan
        # registrations.
        scan = self.limits.max_lookup_scan
        if kind == "ep":
            return ",".join(format_endpoint(e)
                            for e in self.directory.lookup_endpoints(query, scan, scope))
        return ",".join(format_resource(e, link)
                        for e, link in self.directory.lookup_resources(query, scan, scope))

    # -- lifetimes ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self.directory.expiry.next_deadline()

    async def expire_due(self) -> list[RdRegistration]:
        """Remove the registrations whose lifetime has passed, once durably."""
        gone = self.directory.due(self.clock())
        commits: list[asyncio.Future[None]] = []
        for reg in gone:
            _, commit = self.store.remove_nowait(reg.id)
            self.directory.drop(reg)
            if commit is not None:
                commits.append(commit)
        if commits:
            await asyncio.gather(*commits)
        for reg in gone:
            self._removed(reg, "expired")
        return gone

    # -- telling lookup observers ----------------------------------------------------------

    def changed(self) -> None:
        """The directory (or an LwM2M registration) changed: re-check observed lookups
        shortly (one pass for every change until then)."""
        if not self.watchers or self._notify_timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(NOTIFY_DELAY, self._next_pass_at - loop.time())
        self._notify_timer = loop.call_later(delay, self._notify)

    def _notify(self) -> None:
        """One pass over every observed lookup: each distinct lookup is answered once
        (on every transport); a pass that took long delays the next one, so that
        re-evaluating lookups takes at most a tenth of the server's time."""
        self._notify_timer = None
        started = time.perf_counter()
        answers: LookupAnswers = {}
        observed = False
        for watcher in list(self.watchers):
            try:
                observed = watcher(answers) or observed
            except Exception:
                log.exception("notifying lookup observers failed")
        spent = time.perf_counter() - started
        self._next_pass_at = asyncio.get_running_loop().time() + PASS_COST_FACTOR * spent
        self.watch_lwm2m(observed)

    def watch_lwm2m(self, on: bool) -> None:
        """Hear of LwM2M registrations coming and going only while someone observes a
        lookup: subscribing makes the server build an event per Register."""
        if on and self._unsubscribe_lwm2m is None and self._subscribe_lwm2m is not None and (
                self.directory.lwm2m is not None):
            self._unsubscribe_lwm2m = self._subscribe_lwm2m(self._lwm2m_event)
        elif not on and self._unsubscribe_lwm2m is not None:
            self._unsubscribe_lwm2m()
            self._unsubscribe_lwm2m = None

    def _lwm2m_event(self, event: Any) -> None:
        if getattr(event, "name", None) in _LWM2M_CHANGES:
            self.changed()


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _check_if_match(request: Message, reg: RdRegistration) -> None:
    """RFC 7252 section 5.10.8.1: any listed ETag (or an empty one: "exists") matches."""
    wanted = [v for n, v in request.options if n == _IF_MATCH]
    if not wanted:
        return
    if b"" in wanted or rd_etag(reg) in wanted:
        return
    raise RdError(Code.PRECONDITION_FAILED, "If-Match: the registration changed",
                  endpoint=reg.endpoint)


def _check_accept(request: Message) -> None:
    accept = request.accept
    if accept is not None and accept != LINK_FORMAT:
        raise CoapRequestError("lookups answer in link format (40)", Code.NOT_ACCEPTABLE)


def _endpoint_in(query: list[str]) -> str | None:
    for item in query:
        if item.startswith("ep="):
            return item[3:67]
    return None


def _settle(commit: Commit) -> None:
    if commit is not None:
        commit.add_done_callback(lambda f: f.cancelled() or f.exception())
