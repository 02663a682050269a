"""Events the server emits, and the bus that delivers them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m.lwm2m.nodes import TimestampedNodes
from aiolwm2m.lwm2m.operations import ObserveResponse
from aiolwm2m.store.records import Observation, QueuedRequest, Registration

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Registered:
    name: ClassVar[str] = "registered"
    registration: Registration
    replaced: Registration | None = None


@dataclass(frozen=True, slots=True)
class Updated:
    name: ClassVar[str] = "updated"
    registration: Registration
    previous: Registration


@dataclass(frozen=True, slots=True)
class Deregistered:
    name: ClassVar[str] = "deregistered"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Expired:
    name: ClassVar[str] = "expired"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Awake:
    name: ClassVar[str] = "awake"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Sleeping:
    name: ClassVar[str] = "sleeping"
    registration: Registration


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    name: ClassVar[str] = "notification"
    registration: Registration
    observation: Observation
    response: ObserveResponse


@dataclass(frozen=True, slots=True)
class ObservationEnded:
    name: ClassVar[str] = "observation-ended"
    registration: Registration | None
    observation: Observation
    reason: str


@dataclass(frozen=True, slots=True)
class SendReceived:
    name: ClassVar[str] = "send"
    registration: Registration
    values: tuple[TimestampedNodes, ...]


@dataclass(frozen=True, slots=True)
class QueuedRequestFinished:
    name: ClassVar[str] = "queued-request"
    request: QueuedRequest


Event = (Registered | Updated | Deregistered | Expired | Awake | Sleeping
         | NotificationReceived | ObservationEnded | SendReceived | QueuedRequestFinished)
Listener = Callable[[Event], None]


class EventStream:
    """An async iterator over events, with a bounded buffer (oldest dropped on overflow)."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _put(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> Event:
        return await asyncio.wait_for(self._queue.get(), timeout)

    def close(self) -> None:
        self._bus._streams.discard(self)


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._streams: set[EventStream] = set()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every event; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def stream(self, maxsize: int = 10000) -> EventStream:
        s = EventStream(self, maxsize)
        self._streams.add(s)
        return s

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.name)
        for s in list(self._streams):
            s._put(event)
