"""Server-side credential lookups, consulted synchronously from inside the handshake."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from .credentials import PeerIdentity


class CredentialLookup(Protocol):
    """What the server asks about a connecting client; must answer quickly and not block.

    ``psk_key`` returns the key for a PSK identity (None: unknown identity, handshake fails).
    ``rpk_allowed`` says whether a client raw public key (DER SubjectPublicKeyInfo) is known.
    ``x509_allowed`` is asked after the client chain passed the server's certificate usage
    check, so it only decides whether this authenticated identity may connect at all.
    """

    def psk_key(self, identity: bytes) -> bytes | None: ...

    def rpk_allowed(self, spki_der: bytes) -> bool: ...

    def x509_allowed(self, identity: PeerIdentity) -> bool: ...


class InMemoryCredentialLookup:
    """A dict-backed lookup: the platform's security-store index, and the tests' one."""

    def __init__(self, psk: Mapping[bytes, bytes] | None = None,
                 rpk: Iterable[bytes] = (), x509_names: Iterable[str] | None = None) -> None:
        self.psk: dict[bytes, bytes] = dict(psk or {})
        self.rpk: set[bytes] = set(rpk)
        # None: any certificate that passed the usage check; else allowed CN/SAN values.
        self.x509_names: set[str] | None = None if x509_names is None else set(x509_names)

    def psk_key(self, identity: bytes) -> bytes | None:
        return self.psk.get(identity)

    def rpk_allowed(self, spki_der: bytes) -> bool:
        return spki_der in self.rpk

    def x509_allowed(self, identity: PeerIdentity) -> bool:
        if self.x509_names is None:
            return True
        names = {identity.x509_subject_cn, *identity.x509_san}
        return not self.x509_names.isdisjoint(names)
