"""Duplicate detection of uplink requests by message identity (HTT-004).

A device that lost its connection in the middle of a request cannot know whether the server
carried it out; it sends the request again, with the same ``lwm2m-message-id``, on its next
connection. The server answers such a retry with the answer it gave (or is about to give)
the first one, without carrying the request out again: retried once, executed once.

Entries are keyed by the identity, the peer's authenticated principal (none for NoSec), and
a digest of the request (method, target, content type, body): a retry must be the same
request from the same principal, so that one device's identity can never fetch another's
answer. They live in a :class:`~aiolwm2m.coap.generational_cache.GenerationalCache`,
bounded in entries and bytes, for one to two ``lifetime`` periods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import Final

from aiolwm2m.coap.generational_cache import MISSING, GenerationalCache

from .messages import HttpReply, HttpRequest

#: As EXCHANGE_LIFETIME of CoAP (RFC 7252 4.8.2): how long a retry may take at most.
DEDUP_LIFETIME: Final = 247.0
DEDUP_ENTRIES: Final = 1 << 16
DEDUP_BYTES: Final = 8 << 20

Waiter = Callable[[HttpReply], None]


class _Entry:
    __slots__ = ("reply", "waiters")

    def __init__(self) -> None:
        self.reply: HttpReply | None = None
        self.waiters: list[Waiter] = []


def request_key(request: HttpRequest, principal: str | None, mid: str) -> Hashable:
    digest = hashlib.blake2b(digest_size=16)
    headers = request.headers
    digest.update(f"{request.method} {request.path} {headers.get('content-type', '')}\n"
                  .encode("utf-8", "surrogateescape"))
    digest.update(request.body)
    return (principal, mid, digest.digest())


class ReplyCache:
    """Answers given to requests that carried a message identity."""

    def __init__(self, now: float, *, lifetime: float = DEDUP_LIFETIME,
                 capacity: int = DEDUP_ENTRIES, max_bytes: int = DEDUP_BYTES) -> None:
        self._cache: GenerationalCache[_Entry] = GenerationalCache(
            lifetime, capacity, now, max_bytes)
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._cache)

    def begin(self, key: Hashable, now: float, waiter: Waiter) -> bool:
        """True for a new request (the caller carries it out and calls :meth:`finish`);
        False for a retry, whose ``waiter`` gets the first one's answer, at once when it is
        known."""
        entry = self._cache.get(key)
        if entry is MISSING:
            self._cache.add(key, _Entry(), now, 64)
            return True
        assert isinstance(entry, _Entry)
        self.duplicates += 1
        if entry.reply is not None:
            waiter(entry.reply)
        else:
            entry.waiters.append(waiter)
        return False

    def finish(self, key: Hashable, reply: HttpReply, now: float) -> None:
        entry = self._cache.get(key)
        if entry is MISSING:
            entry = _Entry()  # rotated out while it ran: keep the answer anyway
            self._cache.add(key, entry, now, reply.size)
        else:
            assert isinstance(entry, _Entry)
            self._cache.replace(key, entry, now, reply.size)
        entry.reply = reply
        waiters, entry.waiters = entry.waiters, []
        for waiter in waiters:
            waiter(reply)
