"""Who may do what to a generic RD registration, and what a lookup shows (CRD-004).

:class:`PolicyAuthorizer` applies an :class:`~.policy.RdPolicy`:

* **first come, first remembered**: a registration made over an authenticated session
  (DTLS/TLS) belongs to that identity. Only it may register the same (ep, d) again, update,
  patch or delete it; others get 4.03. Reading it (``GET /rd/{id}``) is allowed to whoever
  could see it in a lookup. A NoSec registration's location is its capability (RFC 9176):
  whoever knows it may update or delete it, from any address (command-line clients such as
  libcoap's coap-client use a new port for every request);
* **names bound to credentials** (``bind_credentials``): an endpoint name that has
  credentials in the security store (the LwM2M accounts of ``/api/security``) is registered
  only over a session authenticated with them (4.03 "authentication required" without
  security, 4.03 with other credentials), and its own identity may always register it;
* **allow-lists**: an identity's rule (or the ``"*"`` rule) limits the ``ep`` and ``d`` it
  may register; ``anonymous_register`` turns NoSec registration off;
* **lookup access**: ``anonymous_lookup`` turns NoSec lookups off (4.03); with
  ``sector_lookup`` a lookup sees the registrations without a sector and those in the
  asker's own sectors (the ones it holds registrations in or may register in) or granted
  to it (``lookup``); anonymous peers see only the registrations without a sector.

Besides, a generic registration may not take, without a sector, the name of a live LwM2M
registration (4.03): lookups would show two endpoints of one name. (An LwM2M Register is
never refused because of a generic registration: LwM2M's own rules alone apply to it.)

Peers hear "forbidden" or "authentication required", never which identity a name wants;
``detail`` (the operator's log and ``refused`` events) says.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol

from aiolwm2m.coap.codes import Code
from aiolwm2m.store.rd_records import RdRegistration
from aiolwm2m.store.records import SecurityInfo

from .errors import RdError
from .lwm2m_view import LwM2MRegistrations
from .policy import DEFAULT_POLICY, Patterns, RdPolicy

REGISTER, UPDATE, PATCH, READ, DELETE = "register", "update", "patch", "read", "delete"
_AUTH_REQUIRED = "authentication required"


class PeerOrigin(Protocol):
    """Where a request came from (``aiolwm2m.server.registry.Origin`` is one)."""

    @property
    def transport(self) -> str: ...

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def identity(self) -> str | None: ...


class RdDenial(NamedTuple):
    """``code`` and ``message`` for the peer, ``reason`` and ``detail`` for the operator."""

    code: int
    reason: str
    detail: str
    message: str = "forbidden"


class LookupScope(NamedTuple):
    """What one peer's lookups see under ``sector_lookup``: registrations without a sector,
    and those whose sector it holds, may register in, or is granted."""

    #: Whose scope (the principal; "" for anonymous peers): observed lookups of one asker
    #: share their answers.
    key: str
    sectors: frozenset[str]
    patterns: tuple[Patterns, ...] = ()

    def sees(self, sector: str | None) -> bool:
        if sector is None or sector in self.sectors:
            return True
        return any(p.matches(sector) for p in self.patterns)


ANONYMOUS_SCOPE = LookupScope("", frozenset())


class CredentialsOf(Protocol):
    """The security store, as far as the RD reads it."""

    def get(self, endpoint: str) -> SecurityInfo | None: ...


class RdAuthorizer(Protocol):
    def authorize(self, action: str, endpoint: str, sector: str | None, origin: PeerOrigin,
                  current: RdRegistration | None) -> RdDenial | None:
        """None to allow ``action`` (REGISTER, UPDATE, PATCH, READ, DELETE) on the
        registration (ep, d), ``current`` when it exists; or why not."""

    def lookup_scope(self, origin: PeerOrigin) -> LookupScope | None:
        """What ``origin``'s lookups see (None: everything); RdError when it may not look
        up at all."""


def _no_sectors(_: str) -> Collection[str]:
    return ()


class PolicyAuthorizer:
    def __init__(self, lwm2m: LwM2MRegistrations | None = None, *,
                 security: CredentialsOf | None = None, policy: RdPolicy = DEFAULT_POLICY,
                 held_sectors: Callable[[str], Collection[str]] = _no_sectors) -> None:
        self.lwm2m = lwm2m
        self.security = security
        #: Replaced as a whole (``ResourceDirectory.set_policy``), never changed in place.
        self.policy = policy
        #: The sectors a principal holds registrations in (the directory's count).
        self.held_sectors = held_sectors

    def authorize(self, action: str, endpoint: str, sector: str | None, origin: PeerOrigin,
                  current: RdRegistration | None) -> RdDenial | None:
        identity = origin.identity
        if current is not None and current.identity is not None and (
                current.identity != identity):
            if action == READ and self._may_see(origin, current.sector):
                return None
            return RdDenial(Code.FORBIDDEN, "rd-wrong-identity",
                            f"{endpoint!r} is bound to {current.identity}, not to "
                            f"{identity or 'an unauthenticated peer'}")
        if action != REGISTER:
            return None
        return self._may_register(endpoint, sector, identity)

    def _may_register(self, endpoint: str, sector: str | None, identity: str | None
                      ) -> RdDenial | None:
        policy = self.policy
        if identity is None and not policy.anonymous_register:
            return RdDenial(Code.FORBIDDEN, "rd-auth-required",
                            f"{endpoint!r}: the policy takes no unauthenticated registrations",
                            _AUTH_REQUIRED)
        own_name = False
        if policy.bind_credentials and self.security is not None:
            info = self.security.get(endpoint)
            if info is not None:
                wanted = info.principal
                if identity is None:
                    return RdDenial(Code.FORBIDDEN, "rd-auth-required",
                                    f"{endpoint!r} has credentials ({wanted}) and came "
                                    "without security", _AUTH_REQUIRED)
                if identity != wanted:
                    return RdDenial(Code.FORBIDDEN, "rd-bound-endpoint",
                                    f"{endpoint!r} belongs to {wanted}, not to {identity}")
                own_name = True
        if identity is not None:
            rule = policy.rule_of(identity)
            if rule is not None:
                if rule.endpoints is not None and not own_name and (
                        not rule.endpoints.matches(endpoint)):
                    return RdDenial(Code.FORBIDDEN, "rd-policy-endpoint",
                                    f"{identity} may not register {endpoint!r} (its rule "
                                    f"allows {list(rule.endpoints.texts)[:8]})")
                if rule.sectors is not None and not rule.sectors.matches(sector or ""):
                    return RdDenial(Code.FORBIDDEN, "rd-policy-sector",
                                    f"{identity} may not register in sector {sector!r} (its "
                                    f"rule allows {list(rule.sectors.texts)[:8]})")
        if sector is None and self.lwm2m is not None and endpoint in self.lwm2m.by_endpoint:
            return RdDenial(Code.FORBIDDEN, "rd-name-taken",
                            f"{endpoint!r} is a registered LwM2M endpoint",
                            "endpoint name in use")
        return None

    def lookup_scope(self, origin: PeerOrigin) -> LookupScope | None:
        policy = self.policy
        if origin.identity is None and not policy.anonymous_lookup:
            raise RdError(Code.FORBIDDEN, _AUTH_REQUIRED, reason="rd-lookup-denied",
                          detail="the policy takes no unauthenticated lookups")
        if not policy.sector_lookup:
            return None
        return self._scope(origin.identity)

    def _scope(self, identity: str | None) -> LookupScope:
        if identity is None:
            return ANONYMOUS_SCOPE
        sectors = set(self.held_sectors(identity))
        patterns: list[Patterns] = []
        rule = self.policy.rule_of(identity)
        if rule is not None:
            if rule.sectors is not None:
                sectors.update(rule.sectors.exact)
                if rule.sectors.prefixes:
                    patterns.append(rule.sectors)
            if rule.lookup.texts:
                patterns.append(rule.lookup)
        return LookupScope(identity, frozenset(sectors), tuple(patterns))

    def _may_see(self, origin: PeerOrigin, sector: str | None) -> bool:
        policy = self.policy
        if origin.identity is None and not policy.anonymous_lookup:
            return False
        return not policy.sector_lookup or self._scope(origin.identity).sees(sector)
