"""Whom an https:// firmware download trusts (its own module: the client's configuration
checks the certificates it is given when it is made, not at the first download)."""

from __future__ import annotations

import ssl


def download_context(trust_pem: bytes | None = None) -> ssl.SSLContext:
    """What an https:// download verifies the server with: the system's CA certificates and
    ``trust_pem`` (ValueError when that holds no usable PEM certificate)."""
    context = ssl.create_default_context()
    if trust_pem:
        try:
            context.load_verify_locations(cadata=trust_pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError) as e:
            raise ValueError(f"firmware_trust_pem holds no usable PEM CA certificate: "
                             f"{getattr(e, 'reason', None) or e}") from None
    return context
