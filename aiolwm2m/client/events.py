"""What the client reports about itself: bootstrap, registration, queue mode, reporting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import ClassVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BootstrapStarted:
    name: ClassVar[str] = "bootstrap-started"
    server_initiated: bool = False


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    name: ClassVar[str] = "bootstrapped"


@dataclass(frozen=True, slots=True)
class BootstrapFailed:
    name: ClassVar[str] = "bootstrap-failed"
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class Registered:
    name: ClassVar[str] = "registered"
    ssid: int
    location: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    name: ClassVar[str] = "registration-failed"
    ssid: int
    reason: str
    retry_in: float
    failures: int


@dataclass(frozen=True, slots=True)
class Updated:
    name: ClassVar[str] = "updated"
    ssid: int


@dataclass(frozen=True, slots=True)
class Deregistered:
    name: ClassVar[str] = "deregistered"
    ssid: int


@dataclass(frozen=True, slots=True)
class Disabled:
    name: ClassVar[str] = "disabled"
    ssid: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Sleeping:
    name: ClassVar[str] = "sleeping"


@dataclass(frozen=True, slots=True)
class Awake:
    name: ClassVar[str] = "awake"


@dataclass(frozen=True, slots=True)
class NotificationSent:
    name: ClassVar[str] = "notification-sent"
    ssid: int
    paths: tuple[str, ...]


ClientEvent = (BootstrapStarted | Bootstrapped | BootstrapFailed | Registered
               | RegistrationFailed | Updated | Deregistered | Disabled | Sleeping | Awake
               | NotificationSent)


class ClientEventStream:
    def __init__(self, bus: ClientEvents, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[ClientEvent] = asyncio.Queue(maxsize)

    def put(self, event: ClientEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> ClientEvent:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def until(self, kind: type, timeout: float = 5.0) -> ClientEvent:
        """The next event of type ``kind`` (earlier ones are consumed)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._queue.get()
                if isinstance(event, kind):
                    return event

    def close(self) -> None:
        self._bus.streams.discard(self)


class ClientEvents:
    def __init__(self) -> None:
        self.listeners: list[Callable[[ClientEvent], None]] = []
        self.streams: set[ClientEventStream] = set()
        self.history: list[ClientEvent] = []

    def subscribe(self, listener: Callable[[ClientEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def stream(self, maxsize: int = 1000) -> ClientEventStream:
        s = ClientEventStream(self, maxsize)
        self.streams.add(s)
        return s

    def emit(self, event: ClientEvent) -> None:
        self.history.append(event)
        if len(self.history) > 1000:
            del self.history[:500]
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("client event listener failed on %s", event.name)
        for s in list(self.streams):
            s.put(event)
