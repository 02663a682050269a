"""Bearer tokens for h2c: a PSK identity and key from the security store, in the clear.

``Authorization: Bearer <base64url(identity)>.<base64url(key)>`` authenticates a device as
the principal ``psk:<identity>``, the same one DTLS PSK gives it, so the endpoint's
credentials bind its registration the same way. The key travels in clear text: use it on
trusted networks only (a plant network, a VPN); everywhere else use https, where TLS
authenticates with X.509, a raw public key or the PSK itself without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable

from aiolwm2m.principals import psk_principal

#: Longest Authorization value looked at (identities and keys are short).
MAX_CREDENTIALS = 512


def bearer_token(identity: bytes, key: bytes) -> str:
    return f"{_b64(identity)}.{_b64(key)}"


def bearer_principal(credentials: str, psk_key: Callable[[bytes], bytes | None]
                     ) -> str | None:
    """The principal an ``Authorization`` value proves, given the lookup of PSK keys by
    identity; None for anything else (malformed, unknown identity, wrong key)."""
    scheme, _, token = credentials.partition(" ")
    if scheme.lower() != "bearer" or len(credentials) > MAX_CREDENTIALS:
        return None
    raw_identity, dot, raw_key = token.strip().partition(".")
    if not dot:
        return None
    try:
        identity = _unb64(raw_identity)
        key = _unb64(raw_key)
    except (binascii.Error, ValueError):
        return None
    expected = psk_key(identity)
    if expected is None or not hmac.compare_digest(expected, key):
        return None
    return psk_principal(identity)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
