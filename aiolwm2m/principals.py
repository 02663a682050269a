"""Principals: the strings registrations are bound to, one per authenticated identity.

A transport that authenticated its peer reports ``psk:<identity>``, ``rpk:<sha256 of the
SubjectPublicKeyInfo, hex>`` or ``x509:<certificate name>``; the registry compares these
strings, the SQLite store keeps them, logs and events show them. So the mapping from an
identity to its string must be one-to-one: a PSK identity is any byte string, and writing
it as its UTF-8 decoding with invalid bytes as ``\\xNN`` (what this project did first) made
the one byte ``ff`` and the four characters ``\\xff`` the same principal.

PSK identities are written printable and unambiguous instead: printable ASCII stands for
itself, except the backslash, which is doubled; every other byte is ``\\xNN``. The usual
identity (printable ASCII, no backslash) is therefore unchanged, and so is its stored form.
"""

from __future__ import annotations

import hashlib

PSK_PREFIX = "psk:"
RPK_PREFIX = "rpk:"
X509_PREFIX = "x509:"

_ESCAPED = tuple("\\\\" if b == 0x5C else chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}"
                 for b in range(256))


def escape_identity(raw: bytes) -> str:
    """``raw`` as printable text that names exactly one byte string (see the module)."""
    if raw.isascii():
        text = raw.decode("ascii")
        if text.isprintable() and "\\" not in text:
            return text
    return "".join([_ESCAPED[b] for b in raw])


def psk_principal(identity: bytes) -> str:
    return PSK_PREFIX + escape_identity(identity)


def rpk_principal(spki_der: bytes) -> str:
    return RPK_PREFIX + hashlib.sha256(spki_der).hexdigest()


def x509_principal(name: str) -> str:
    return X509_PREFIX + name


# -- principals stored by earlier versions ---------------------------------------------------


def legacy_psk_principal(identity: bytes) -> str:
    """The PSK principal as earlier versions wrote it (ambiguous; only for reading their
    rows)."""
    return PSK_PREFIX + identity.decode("utf-8", "backslashreplace")


def upgrade_legacy_principal(principal: str) -> str | None:
    """The current form of a principal an earlier version stored, or None when its text
    fits more than one identity.

    RPK and X.509 principals did not change. A legacy PSK text without a backslash was the
    identity's valid UTF-8, so it names one byte string; with a backslash it may stand for
    escaped bytes or for a literal backslash (``\\xff``: the byte ``ff`` or four
    characters), and only the endpoint's credentials can settle which."""
    if not principal.startswith(PSK_PREFIX):
        return principal
    text = principal[len(PSK_PREFIX):]
    if "\\" in text:
        return None
    try:
        return psk_principal(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: not something a decoder wrote
        return None
