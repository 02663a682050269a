"""Binding endpoints to the identities they authenticate with (the security store's view)."""

from __future__ import annotations

import hashlib

from aiolwm2m.security.credentials import PeerIdentity
from aiolwm2m.store.interfaces import SecurityStore
from aiolwm2m.store.records import Registration, SecurityInfo

from .registry import DefaultAuthorizer, Origin


def expected_identity(info: SecurityInfo) -> str:
    """The identity string a transport reports for a peer holding ``info``'s credentials."""
    if info.psk_identity is not None:
        return "psk:" + info.psk_identity.decode("utf-8", "backslashreplace")
    if info.rpk_public_key is not None:
        return "rpk:" + hashlib.sha256(info.rpk_public_key).hexdigest()
    return "x509:" + (info.x509_identity or "")


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
                  current: Registration | None) -> str | None:
        info = self.store.get(endpoint)
        if info is not None:
            wanted = expected_identity(info)
            if origin.identity != wanted:
                how = "without security" if origin.identity is None else (
                    f"as {origin.identity}")
                return f"endpoint {endpoint!r} must authenticate as {wanted}, not {how}"
        elif origin.identity is not None:
            return (f"{origin.identity} has no credentials for endpoint {endpoint!r} "
                    "(register them in the security store)")
        return super().authorize(endpoint, origin, current)
