"""Message identities (HTT-004): what the CoAP token and message ID do, for HTTP/2.

HTTP/2 stream ids are per connection, so they cannot name a message across a reconnect. Every
LwM2M message over HTTP/2 therefore carries an application-level identity: the
``lwm2m-message-id`` header of a request from the device, field 0 of a downlink envelope
towards it, and the last segment of ``/rd/{id}/responses/{identity}`` of the answer. It is
1 to 64 characters of the base64url alphabet; both ends make them from 96 random bits.

The identity is used as the CoAP token of the message it stands for (its ASCII bytes), so
observations keep their identity as their token in the store, and logs and events show the
same text on both bindings.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Final

HEADER: Final = "lwm2m-message-id"
MAX_LENGTH: Final = 64
_VALID: Final = re.compile(rb"[A-Za-z0-9_-]{1,64}\Z").match
_VALID_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z", re.ASCII).match


class IdentityPool:
    """New identities, 96 random bits each, drawn from the OS 128 at a time."""

    __slots__ = ("_ready",)

    def __init__(self) -> None:
        self._ready: list[str] = []

    def __call__(self) -> str:
        if not self._ready:
            text = base64.urlsafe_b64encode(os.urandom(12 * 128)).decode("ascii")
            self._ready = [text[i:i + 16] for i in range(0, len(text), 16)]
        return self._ready.pop()


new_identity: Final = IdentityPool()


def valid_identity(value: bytes | str) -> bool:
    if isinstance(value, str):
        return _VALID_TEXT(value) is not None
    return _VALID(value) is not None


def token_of(identity: str) -> bytes:
    return identity.encode("ascii")


def identity_of(token: bytes) -> str:
    """The identity a token stands for (tokens we did not make from one are encoded)."""
    if valid_identity(token):
        return token.decode("ascii")
    return base64.urlsafe_b64encode(token).decode("ascii").rstrip("=") or "-"
