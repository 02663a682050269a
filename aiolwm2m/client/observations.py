"""The client's observations: which server watches which paths, and when to notify.

Sans-IO: changes and the current time go in (:meth:`ObservationEngine.value_changed`,
:meth:`ObservationEngine.poll`), observations due for a notification and the next deadline
come out. Rendering and sending the notification is the caller's job; it then calls
:meth:`ObservationEngine.notified` with the time so the next pmin/pmax count from there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator

from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.path import LwM2MPath

from .notification_rules import path_timing

AttributesOf = Callable[[int, LwM2MPath], NotificationAttributes]
NumericValue = Callable[[LwM2MPath], float | None]


class ClientObservation:
    """One observation (plain or composite) a server holds on this client."""

    __slots__ = ("changed", "composite", "key", "last_eval", "last_notify", "paths",
                 "request", "ssid", "values", "wake_at")

    def __init__(self, key: Hashable, ssid: int, paths: tuple[LwM2MPath, ...],
                 composite: bool, request: Message, now: float) -> None:
        self.key = key
        self.ssid = ssid
        self.paths = paths
        self.composite = composite
        self.request = request
        self.last_notify = now
        self.last_eval = now
        self.changed: set[LwM2MPath] = set()
        self.values: dict[LwM2MPath, float | None] = {}
        self.wake_at: float | None = None

    def __repr__(self) -> str:
        return f"<ClientObservation ssid={self.ssid} {','.join(map(str, self.paths))}>"

    def watches(self, path: LwM2MPath) -> list[LwM2MPath]:
        """The observed paths a change at ``path`` concerns."""
        return [p for p in self.paths if p.is_prefix_of(path) or path.is_prefix_of(p)]


class ObservationEngine:
    def __init__(self, attributes: AttributesOf, numeric: NumericValue) -> None:
        self.attributes = attributes
        self.numeric = numeric
        self._by_key: dict[Hashable, ClientObservation] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[ClientObservation]:
        return iter(list(self._by_key.values()))

    def add(self, key: Hashable, ssid: int, paths: tuple[LwM2MPath, ...], composite: bool,
            request: Message, now: float) -> ClientObservation:
        """A new observation whose first response (carrying the current values) went out
        at ``now``; an observation with the same key is replaced."""
        obs = ClientObservation(key, ssid, paths, composite, request, now)
        for p in paths:
            obs.values[p] = self.numeric(p)
        self._by_key[key] = obs
        self._reschedule(obs, now)
        return obs

    def get(self, key: Hashable) -> ClientObservation | None:
        return self._by_key.get(key)

    def remove(self, key: Hashable) -> ClientObservation | None:
        return self._by_key.pop(key, None)

    def remove_server(self, ssid: int) -> list[ClientObservation]:
        gone = [o for o in self._by_key.values() if o.ssid == ssid]
        for o in gone:
            del self._by_key[o.key]
        return gone

    def remove_under(self, prefix: LwM2MPath) -> list[ClientObservation]:
        """Observations of anything under a deleted instance end."""
        gone = [o for o in self._by_key.values() if any(prefix.is_prefix_of(p) for p in o.paths)]
        for o in gone:
            del self._by_key[o.key]
        return gone

    def value_changed(self, path: LwM2MPath, now: float) -> bool:
        """Record a change; True when some observation cares (poll soon)."""
        touched = False
        for obs in self._by_key.values():
            hits = obs.watches(path)
            if hits:
                obs.changed.update(hits)
                touched = True
        return touched

    def attributes_changed(self, now: float) -> None:
        """Write-Attributes happened: deadlines depend on the new values."""
        for obs in self._by_key.values():
            self._reschedule(obs, now)

    def poll(self, now: float) -> list[ClientObservation]:
        """Observations that must notify now. Changes that do not meet gt/lt/st are
        dropped; changes held back by pmin/epmin stay pending."""
        due: list[ClientObservation] = []
        for obs in list(self._by_key.values()):
            if self._evaluate(obs, now):
                due.append(obs)
        return due

    def _evaluate(self, obs: ClientObservation, now: float) -> bool:
        wakes: list[float] = []
        is_due = False
        evaluated = False
        for p in obs.paths:
            attrs = self.attributes(obs.ssid, p)
            changed = p in obs.changed
            current = self.numeric(p) if changed or attrs.epmax else None
            t = path_timing(attrs, now, obs.last_notify, obs.last_eval, changed,
                            obs.values.get(p), current)
            evaluated = evaluated or t.evaluated
            if t.due:
                is_due = True
            if not t.keep_change:
                obs.changed.discard(p)
            if t.wake_at is not None:
                wakes.append(t.wake_at)
        if evaluated:
            obs.last_eval = now
        obs.wake_at = min(wakes) if wakes and not is_due else None
        return is_due

    def notified(self, obs: ClientObservation, now: float) -> None:
        obs.last_notify = now
        obs.last_eval = now
        obs.changed.clear()
        for p in obs.paths:
            obs.values[p] = self.numeric(p)
        self._reschedule(obs, now)

    def _reschedule(self, obs: ClientObservation, now: float) -> None:
        """Recompute when ``obs`` needs looking at, without evaluating any change."""
        wakes: list[float] = []
        for p in obs.paths:
            attrs = self.attributes(obs.ssid, p)
            previous = obs.values.get(p)
            t = path_timing(attrs, now, obs.last_notify, obs.last_eval, p in obs.changed,
                            previous, previous)
            if t.wake_at is not None:
                wakes.append(t.wake_at)
            if t.due or (p in obs.changed and not t.keep_change):
                wakes.append(now)
        obs.wake_at = min(wakes) if wakes else None

    def next_deadline(self) -> float | None:
        times = [o.wake_at for o in self._by_key.values() if o.wake_at is not None]
        return min(times) if times else None
