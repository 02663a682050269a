"""The server's events about one device, for the jobs and campaigns that wait on it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiolwm2m.server.events import Event

Listener = Callable[[Event], None]
#: Events a waiting job keeps; a device cannot make it hold more.
_BACKLOG = 64


class DeviceEvents:
    """Fans the server's events out by endpoint name (one dict lookup per event)."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        #: Called for every event about any device: (endpoint, event).
        self.on_device: Callable[[str, Event], None] | None = None

    def __call__(self, ev: Event) -> None:
        reg = getattr(ev, "registration", None)
        if reg is None:
            return
        endpoint: str = reg.endpoint
        listeners = self._listeners.get(endpoint)
        if listeners:
            for listener in list(listeners):
                listener(ev)
        if self.on_device is not None:
            self.on_device(endpoint, ev)

    def listen(self, endpoint: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault(endpoint, []).append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(endpoint)
            if listeners is not None and listener in listeners:
                listeners.remove(listener)
                if not listeners:
                    del self._listeners[endpoint]

        return unsubscribe


class Watcher:
    """The events about one device since the watcher was made, to wait on one by one."""

    def __init__(self, events: DeviceEvents, endpoint: str) -> None:
        self._queue: deque[Event] = deque(maxlen=_BACKLOG)
        self._arrived = asyncio.Event()
        self._unsubscribe = events.listen(endpoint, self._put)

    def _put(self, ev: Event) -> None:
        self._queue.append(ev)
        self._arrived.set()

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one."""
        if not self._queue:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.0, timeout))
            except TimeoutError:
                return None
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        self._unsubscribe()
