"""Events of the bootstrap server, one series per session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import ClassVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionStarted:
    name: ClassVar[str] = "bootstrap-started"
    session_id: str
    endpoint: str
    address: str
    server_initiated: bool


@dataclass(frozen=True, slots=True)
class RequestSent:
    name: ClassVar[str] = "bootstrap-request-sent"
    session_id: str
    endpoint: str
    operation: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RequestAnswered:
    name: ClassVar[str] = "bootstrap-request-answered"
    session_id: str
    endpoint: str
    operation: str
    code: str


@dataclass(frozen=True, slots=True)
class SessionFinished:
    name: ClassVar[str] = "bootstrap-finished"
    session_id: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class SessionFailed:
    name: ClassVar[str] = "bootstrap-failed"
    session_id: str
    endpoint: str
    reason: str


BootstrapEvent = (SessionStarted | RequestSent | RequestAnswered | SessionFinished
                  | SessionFailed)


class BootstrapEventStream:
    def __init__(self, bus: BootstrapEvents, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[BootstrapEvent] = asyncio.Queue(maxsize)

    def put(self, event: BootstrapEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[BootstrapEvent]:
        return self

    async def __anext__(self) -> BootstrapEvent:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> BootstrapEvent:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def until(self, kind: type, timeout: float = 5.0) -> BootstrapEvent:
        async with asyncio.timeout(timeout):
            while True:
                event = await self._queue.get()
                if isinstance(event, kind):
                    return event

    def close(self) -> None:
        self._bus.streams.discard(self)


class BootstrapEvents:
    def __init__(self) -> None:
        self.listeners: list[Callable[[BootstrapEvent], None]] = []
        self.streams: set[BootstrapEventStream] = set()

    def subscribe(self, listener: Callable[[BootstrapEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def stream(self, maxsize: int = 10000) -> BootstrapEventStream:
        s = BootstrapEventStream(self, maxsize)
        self.streams.add(s)
        return s

    def emit(self, event: BootstrapEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("bootstrap event listener failed on %s", event.name)
        for s in list(self.streams):
            s.put(event)
