"""Paths of end devices behind an LwM2M Gateway: ``/{prefix}/3303/0/5700``.

The Gateway TS gives every end device a Prefix (``/25/x/1``) that goes in front of its
object paths, the way an alternate root path does: ``/dev1/3303/0/5700`` is the Sensor Value
of the end device whose prefix is ``dev1``; ``/3303/0/5700`` is the gateway's own. A prefix
must never read as an object id, so this module refuses one made only of digits.

Sans-IO and small on purpose: the server, the REST API and the gateway all parse the same
way. A prefix travels in URIs, SenML names, logs and REST paths, so it is kept to URI
unreserved characters (RFC 3986: letters, digits, ``-._~``), at most 64 of them, never
``.`` or ``..``.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from .errors import InvalidPath, shown
from .path import ROOT, LwM2MPath

__all__ = ["MAX_PREFIX_LENGTH", "PrefixedPath", "check_prefix", "parse_prefixed",
           "prefix_problem"]

MAX_PREFIX_LENGTH: Final = 64
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9._~-]+")


def prefix_problem(prefix: object) -> str | None:
    """Why ``prefix`` cannot name an end device, or None when it can."""
    if not isinstance(prefix, str):
        return "a prefix is a string"
    if not prefix:
        return "the prefix is empty"
    if len(prefix) > MAX_PREFIX_LENGTH:
        return f"a prefix has at most {MAX_PREFIX_LENGTH} characters"
    if prefix.isascii() and prefix.isdigit():
        return f"prefix {shown(prefix, 20)} clashes with an object id (digits only)"
    if prefix in (".", ".."):
        return "'.' and '..' are not prefixes"
    if not _UNRESERVED.fullmatch(prefix):
        return (f"prefix {shown(prefix, 20)} has characters other than letters, digits "
                "and -._~")
    return None


def check_prefix(prefix: str) -> str:
    """``prefix`` when it can name an end device; raises InvalidPath otherwise."""
    problem = prefix_problem(prefix)
    if problem is not None:
        raise InvalidPath("/" + str(prefix)[:40], problem)
    return prefix


class PrefixedPath(NamedTuple):
    """An LwM2M path with the prefix of the end device it belongs to (None: the
    gateway's, or an ordinary device's, own data)."""

    prefix: str | None
    path: LwM2MPath

    def __str__(self) -> str:
        if self.prefix is None:
            return str(self.path)
        return f"/{self.prefix}" if not self.path else f"/{self.prefix}{self.path}"


def parse_prefixed(text: str) -> PrefixedPath:
    """``"/dev1/3303/0"`` -> ``("dev1", /3303/0)``; ``"/3303/0"`` -> ``(None, /3303/0)``;
    ``"/dev1"`` -> ``("dev1", /)``. Raises InvalidPath."""
    if not isinstance(text, str):
        raise InvalidPath(shown(text), "a path must be a string")
    if not text.startswith("/") or text == "/":
        return PrefixedPath(None, LwM2MPath.parse(text))
    first, slash, rest = text[1:].partition("/")
    if first.isascii() and first.isdigit():
        return PrefixedPath(None, LwM2MPath.parse(text))
    check_prefix(first)
    path = LwM2MPath.parse("/" + rest) if slash and rest else ROOT
    if slash and not rest:
        raise InvalidPath(text, "empty segment after the prefix")
    return PrefixedPath(first, path)
