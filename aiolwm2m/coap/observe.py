"""Observe (RFC 7641): notification ordering for clients and the observer list for servers."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .codes import MessageType
from .message import Message
from .options import OptionNumber, encode_uint

_SEQ_MODULUS = 1 << 24
_HALF = 1 << 23
FRESHNESS_WINDOW = 128.0


def is_fresh(v1: int, t1: float, v2: int, t2: float) -> bool:
    """Whether a notification (V2 at T2) is newer than the last one seen (V1 at T1).

    RFC 7641 section 3.4: sequence numbers wrap at 2**24 and are only comparable for 128 s.
    """
    return (v1 < v2 and v2 - v1 < _HALF) or (v1 > v2 and v1 - v2 > _HALF) or (
        t2 > t1 + FRESHNESS_WINDOW)


class Observation:
    """One client observing one resource."""

    __slots__ = ("con_due", "key", "notifications", "peer", "request", "token", "user")

    def __init__(self, request: Message, key: Hashable) -> None:
        self.request = request
        self.peer = request.remote
        self.token = request.token
        self.key = key
        self.notifications = 0
        self.con_due = 0.0
        self.user: Any = None


def _target(request: Message) -> list[tuple[int, bytes]]:
    return [o for o in request.options
            if o[0] == OptionNumber.URI_PATH or o[0] == OptionNumber.URI_QUERY]


class ObserverRegistry:
    """Server-side list of observers, indexed by client and token and by resource.

    ``con_every`` and ``con_interval`` set how often a notification is sent Confirmable so
    that observers that went away are detected (RFC 7641 section 4.5 asks for at least one
    every 24 hours).
    """

    def __init__(self, *, con_every: int = 20, con_interval: float = 300.0) -> None:
        self.con_every = con_every
        self.con_interval = con_interval
        self._by_token: dict[tuple[Hashable, bytes], Observation] = {}
        self._by_resource: dict[Hashable, dict[tuple[Hashable, bytes], Observation]] = {}
        self._seq = 2

    def __len__(self) -> int:
        return len(self._by_token)

    def add(self, request: Message, key: Hashable, now: float) -> Observation:
        """Register ``request`` (a GET/FETCH with Observe=0) as an observer of ``key``.

        An existing entry of the same client for the same resource is replaced
        (RFC 7641 section 4.1), as is one with the same token.
        """
        peer = request.remote
        target = _target(request)
        for other in list(self._by_resource.get(key, {}).values()):
            if other.peer == peer and _target(other.request) == target:
                self._drop(other)
        old = self._by_token.get((peer, request.token))
        if old is not None:
            self._drop(old)
        obs = Observation(request, key)
        obs.con_due = now + self.interval_for(obs)
        self._by_token[(peer, request.token)] = obs
        self._by_resource.setdefault(key, {})[(peer, request.token)] = obs
        return obs

    def get(self, peer: Hashable, token: bytes) -> Observation | None:
        return self._by_token.get((peer, token))

    def remove(self, peer: Hashable, token: bytes) -> Observation | None:
        obs = self._by_token.get((peer, token))
        if obs is not None:
            self._drop(obs)
        return obs

    def remove_peer(self, peer: Hashable) -> list[Observation]:
        gone = [o for (p, _), o in self._by_token.items() if p == peer]
        for o in gone:
            self._drop(o)
        return gone

    def observers(self, key: Hashable) -> list[Observation]:
        return list(self._by_resource.get(key, {}).values())

    def count(self, key: Hashable) -> int:
        """How many observe ``key`` (without copying them, as :meth:`observers` does)."""
        return len(self._by_resource.get(key, ()))

    def interval_for(self, obs: Observation) -> float:
        """Longest time between two Confirmable notifications to ``obs``; subclasses may
        vary it per resource (a pub/sub topic's "observer-check")."""
        return self.con_interval

    def dropped(self, obs: Observation) -> None:
        """``obs`` left the list (cancelled, replaced, reset, timed out or ended by an
        error notification); for subclasses that keep their own accounting."""

    def acknowledged(self, obs: Observation) -> None:
        """A Confirmable notification to ``obs`` was acknowledged (for subclasses)."""

    def __iter__(self) -> Any:
        return iter(list(self._by_token.values()))

    def _drop(self, obs: Observation) -> None:
        tk = (obs.peer, obs.token)
        if self._by_token.get(tk) is obs:
            del self._by_token[tk]
        group = self._by_resource.get(obs.key)
        if group is not None and group.get(tk) is obs:
            del group[tk]
            if not group:
                del self._by_resource[obs.key]
            self.dropped(obs)

    def next_sequence(self) -> int:
        self._seq = (self._seq + 1) % _SEQ_MODULUS
        return self._seq

    def prepare(self, obs: Observation, response: Message, now: float,
                confirmable: bool | None = None) -> Message:
        """Turn ``response`` into the next notification for ``obs`` (token, Observe, type)."""
        response.token = obs.token
        if 64 <= response.code < 96:
            response.set_option(OptionNumber.OBSERVE, encode_uint(self.next_sequence()))
        else:
            # An error ends the observation (RFC 7641 section 4.2); it goes without Observe.
            response.remove_option(OptionNumber.OBSERVE)
            self._drop(obs)
        obs.notifications += 1
        if confirmable is None:
            confirmable = (now >= obs.con_due
                           or (self.con_every > 0 and obs.notifications % self.con_every == 0))
        if confirmable:
            obs.con_due = now + self.interval_for(obs)
        response.mtype = MessageType.CON if confirmable else MessageType.NON
        return response

    def initial_sequence(self) -> bytes:
        return encode_uint(self.next_sequence())
