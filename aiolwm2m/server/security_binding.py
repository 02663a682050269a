"""Binding endpoints to the identities they authenticate with (the security store's view)."""

from __future__ import annotations

from aiolwm2m.security.credentials import PeerIdentity
from aiolwm2m.store.interfaces import SecurityStore
from aiolwm2m.store.records import Registration

from .registry import DefaultAuthorizer, Denial, Origin


class StoreCredentialLookup:
    """The DTLS/TLS servers' synchronous credential lookups, answered by the security store's
    in-memory index."""

    def __init__(self, store: SecurityStore) -> None:
        self.store = store

    def psk_key(self, identity: bytes) -> bytes | None:
        info = self.store.find_psk(identity)
        return info.psk_key if info is not None else None

    def rpk_allowed(self, spki_der: bytes) -> bool:
        return self.store.find_rpk(spki_der) is not None

    def x509_allowed(self, identity: PeerIdentity) -> bool:
        names = [n for n in (identity.x509_subject_cn, *identity.x509_san) if n]
        return any(self.store.find_x509(n) is not None for n in names)


class SecurityAuthorizer(DefaultAuthorizer):
    """An endpoint with credentials in the store may only register (update, de-register)
    over a secure session authenticated with exactly those credentials; an authenticated
    identity may only register the endpoint its credentials belong to. Endpoints without
    credentials may use NoSec, as in development setups."""

    def __init__(self, store: SecurityStore) -> None:
        self.store = store

    def authorize(self, endpoint: str, origin: Origin,
                  current: Registration | None) -> Denial | None:
        # The peer hears "forbidden" or "authentication required", never which identity an
        # endpoint wants: that would let anyone list the PSK identities of a fleet.
        info = self.store.get(endpoint)
        if info is not None:
            wanted = info.principal
            if origin.identity is None:
                return Denial("authentication-required",
                              f"endpoint {endpoint!r} has credentials ({wanted}) and came "
                              "without security", "authentication required")
            if origin.identity != wanted:
                return Denial("wrong-identity", f"endpoint {endpoint!r} must authenticate "
                              f"as {wanted}, not as {origin.identity}")
        elif origin.identity is not None:
            return Denial("no-credentials",
                          f"{origin.identity} has no credentials for endpoint {endpoint!r} "
                          "(register them in the security store)")
        return super().authorize(endpoint, origin, current)
