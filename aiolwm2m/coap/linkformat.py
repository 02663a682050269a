"""CoRE Link Format (RFC 6690): parse and serialise.

A link keeps its parameters as an ordered list of ``(name, value)`` pairs so that repeated
parameters survive a round trip; ``value`` is ``None`` for a bare parameter such as ``obs``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

from .errors import CoapError


class LinkFormatError(CoapError):
    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at offset {position}")
        self.reason = reason
        self.position = position


class TooManyLinks(LinkFormatError):
    """The document holds more links than the caller allows (``max_links``)."""


_PARMNAME_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~*")
_PTOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'()*+-./:<=>?@[]^_`{|}~")
_WHITESPACE = " \t\r\n"
# Parameters RFC 6690 always writes as quoted strings; everything else is quoted only when its
# value is not a valid ptoken (e.g. LwM2M's multi-valued ``ct="60 110"``).
_ALWAYS_QUOTED = frozenset({"rt", "if", "anchor", "title"})


class Link:
    __slots__ = ("params", "target")

    def __init__(self, target: str, params: Sequence[tuple[str, str | None]] = ()) -> None:
        self.target = target
        self.params: list[tuple[str, str | None]] = list(params)

    def get(self, name: str, default: str | None = None) -> str | None:
        for n, v in self.params:
            if n == name:
                return v
        return default

    def get_all(self, name: str) -> list[str | None]:
        return [v for n, v in self.params if n == name]

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.params)

    def values(self, name: str) -> list[str]:
        """Space-separated values of every occurrence of ``name`` (``rt``, ``if``, ``ct``...)."""
        out: list[str] = []
        for n, v in self.params:
            if n == name and v:
                out.extend(v.split())
        return out

    def set(self, name: str, value: str | None) -> None:
        """Replace every occurrence of ``name`` by one with ``value``."""
        kept = [(n, v) for n, v in self.params if n != name]
        kept.append((name, value))
        self.params = kept

    def __repr__(self) -> str:
        return f"Link({self.target!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Link):
            return NotImplemented
        return self.target == other.target and self.params == other.params

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return format_link(self)


def parse_link_format(text: str | bytes, max_links: int | None = None) -> list[Link]:
    """Parse a link-format document; whitespace between links is tolerated.

    With ``max_links``, a document holding more links raises :class:`TooManyLinks` as soon
    as the parser reaches the first link too many (the rest is not parsed). Parsing is
    linear in the length of the document.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise LinkFormatError("link format is not UTF-8", e.start) from None
    links: list[Link] = []
    n = len(text)
    i = _skip_ws(text, 0)
    if i == n:
        return links
    while True:
        if max_links is not None and len(links) >= max_links:
            raise TooManyLinks(f"more than {max_links} links", i)
        if text[i] != "<":
            raise LinkFormatError("expected '<'", i)
        j = text.find(">", i + 1)
        if j < 0:
            raise LinkFormatError("unterminated '<'", i)
        target = text[i + 1:j]
        i = j + 1
        params: list[tuple[str, str | None]] = []
        while i < n and text[i] == ";":
            i += 1
            k = i
            while k < n and text[k] in _PARMNAME_CHARS:
                k += 1
            if k == i:
                raise LinkFormatError("empty parameter name", i)
            name = text[i:k]
            i = k
            value: str | None = None
            if i < n and text[i] == "=":
                i += 1
                if i < n and text[i] == '"':
                    value, i = _parse_quoted(text, i)
                else:
                    k = i
                    while k < n and text[k] in _PTOKEN_CHARS:
                        k += 1
                    if k == i:
                        raise LinkFormatError(f"empty value for parameter {name[:20]!r}", i)
                    value = text[i:k]
                    i = k
            params.append((name, value))
        links.append(Link(target, params))
        i = _skip_ws(text, i)
        if i == n:
            return links
        if text[i] != ",":
            raise LinkFormatError(f"unexpected {text[i]!r}", i)
        i = _skip_ws(text, i + 1)
        if i == n:
            raise LinkFormatError("trailing ','", i)


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WHITESPACE:
        i += 1
    return i


def _parse_quoted(text: str, i: int) -> tuple[str, int]:
    start = i
    i += 1
    n = len(text)
    chunks: list[str] = []
    run = i
    while i < n:
        c = text[i]
        if c == '"':
            chunks.append(text[run:i])
            return "".join(chunks), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            chunks.append(text[run:i])
            chunks.append(text[i + 1])
            i += 2
            run = i
            continue
        i += 1
    raise LinkFormatError("unterminated quoted string", start)


def _is_ptoken(value: str) -> bool:
    return bool(value) and all(c in _PTOKEN_CHARS for c in value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_param(name: str, value: str | None) -> str:
    if value is None:
        return name
    if name in _ALWAYS_QUOTED or not _is_ptoken(value):
        return f"{name}={_quote(value)}"
    return f"{name}={value}"


def format_link(link: Link) -> str:
    parts = [f"<{link.target}>"]
    parts.extend(format_param(n, v) for n, v in link.params)
    return ";".join(parts)


def format_link_format(links: Iterable[Link]) -> str:
    return ",".join(format_link(link) for link in links)
