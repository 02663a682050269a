"""Delivering events to listeners and async streams, for the server, the client and the
Bootstrap-Server alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class NamedEvent(Protocol):
    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=NamedEvent)


class EventStream(Generic[E]):
    """An async iterator over events with a bounded buffer: a slow reader loses the oldest
    events (counted in ``dropped``) rather than holding the emitter up."""

    def __init__(self, bus: EventBus[E], maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[E] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, event: E) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> E:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def until(self, kind: type, timeout: float = 5.0) -> E:
        """The next event of type ``kind`` (the ones before it are consumed)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._queue.get()
                if isinstance(event, kind):
                    return event

    def close(self) -> None:
        self._bus._streams.discard(self)


class EventBus(Generic[E]):
    def __init__(self, stream_size: int = 10000) -> None:
        self._listeners: list[Callable[[E], None]] = []
        self._streams: set[EventStream[E]] = set()
        self._stream_size = stream_size

    def subscribe(self, listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` for every event; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def stream(self, maxsize: int | None = None) -> EventStream[E]:
        s = EventStream(self, maxsize or self._stream_size)
        self._streams.add(s)
        return s

    @property
    def watched(self) -> bool:
        """Whether anyone listens: emitters on hot paths may skip building the event."""
        return bool(self._listeners or self._streams)

    def emit(self, event: E) -> None:
        # Copies, since a listener may unsubscribe; skipped when empty, as is usual on
        # the per-request path of a server nobody watches.
        if self._listeners:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener failed on %s", event.name)
        if self._streams:
            for s in list(self._streams):
                s.put(event)
