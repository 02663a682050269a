"""Server events to any number of server-sent-event subscribers at the cost of one.

Each event is appended once to a log shared by all subscribers; a subscriber is a cursor
into it. An event's SSE frame is encoded when the first subscriber reaches it and the bytes
are shared, so an event is encoded once whatever the number of subscribers, and publishing
it is O(1). Writing to the subscribers' connections is what costs (some 50 us each through
the HTTP server), so it is kept off the emitter's path and bounded:

* waiting subscribers are woken after a short delay that grows with their number (0.2 ms
  per subscriber, at most 1 s: 100 ms for 500), and each then writes everything new in one
  piece, so a burst of events costs each subscriber one write;
* they are woken 32 per loop iteration, so that requests keep being served in between;
* a subscriber whose client does not read blocks in its own write and costs nothing more.

The log keeps the last ``max_events`` events and at most ``max_bytes`` of encoded frames. A
subscriber that falls further behind has lost events: it gets a final ``event: dropped``
frame giving the reason, and its stream ends, instead of the server buffering for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import Event

from .events_json import event_json

log = logging.getLogger(__name__)
_throttled = LogThrottle(log)

OPENING = b": aiolwm2m events\n\n"
KEEPALIVE = b": keep-alive\n\n"
#: Subscribers are woken this long after an event per subscriber (capped): what keeps their
#: writes, some 50 us each, at a fraction of the loop under a steady stream of events.
FLUSH_DELAY_PER_SUBSCRIBER = 0.0002
MAX_FLUSH_DELAY = 1.0
#: Subscribers woken per loop iteration: the loop serves requests between the groups.
WAKE_PER_ITERATION = 32


class RemoteEvents(Protocol):
    """Where the events of other nodes come from (``aiolwm2m.cluster.events``)."""

    async def watch(self) -> None:
        """The first subscriber: every node publishes its events from when this returns."""

    def unwatch(self) -> None:
        """The last subscriber left."""


class _Entry:
    __slots__ = ("endpoint", "event", "frame")

    def __init__(self, event: Event | None) -> None:
        self.event: Event | None = event
        self.frame: bytes | None = None
        self.endpoint: str | None = None


def dropped_frame(reason: str, missed: int) -> bytes:
    data = json.dumps({"type": "dropped", "reason": reason, "missed": missed})
    return f"event: dropped\ndata: {data}\n\n".encode()


class SseFanout:
    def __init__(self, server: LwM2MServer, *, max_events: int = 1000,
                 max_bytes: int = 4 << 20, keepalive: float = 15.0) -> None:
        self.server = server
        self.max_events = max(1, max_events)
        self.max_bytes = max_bytes
        self.keepalive = keepalive
        self._log: deque[_Entry] = deque()
        self._first = 0  # sequence number of self._log[0]
        self._bytes = 0  # encoded bytes the log holds
        #: Woken with True (time for a keep-alive), False (maybe new events) or None (end).
        self._waiters: list[asyncio.Future[bool | None]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.subscribers = 0
        #: Set by :meth:`end_streams`: every stream ends at its next wake-up.
        self.ending = False
        #: Several nodes: the other nodes' events (:meth:`publish_frame` takes them), and
        #: the first subscriber's asking for them, which every subscriber waits for.
        self.remote: RemoteEvents | None = None
        self._remote_watch: asyncio.Future[None] | None = None
        #: Events encoded (each once) and subscribers dropped for falling behind.
        self.encoded = 0
        self.dropped = 0

    @property
    def _end(self) -> int:
        return self._first + len(self._log)

    # -- publishing (the event bus's listener; O(1) in the number of subscribers) -----------

    def _publish(self, event: Event) -> None:
        self._log.append(_Entry(event))
        if len(self._log) > self.max_events:
            self._trim()
        if self._flush is None and self._waiters and self._loop is not None:
            delay = min(MAX_FLUSH_DELAY, self.subscribers * FLUSH_DELAY_PER_SUBSCRIBER)
            self._flush = self._loop.call_later(delay, self._wake_waiters, False)

    def publish_frame(self, name: str, endpoint: str | None, data: str) -> None:
        """An event another node encoded (its JSON text), for this node's subscribers."""
        if self._unsubscribe is None:
            return  # nobody subscribed here
        entry = _Entry(None)
        entry.frame = f"event: {name}\ndata: {data}\n\n".encode()
        entry.endpoint = endpoint
        self._bytes += len(entry.frame)
        self._log.append(entry)
        if len(self._log) > self.max_events or self._bytes > self.max_bytes:
            self._trim()
        if self._flush is None and self._waiters and self._loop is not None:
            delay = min(MAX_FLUSH_DELAY, self.subscribers * FLUSH_DELAY_PER_SUBSCRIBER)
            self._flush = self._loop.call_later(delay, self._wake_waiters, False)

    def _wake_waiters(self, keepalive: bool | None) -> None:
        self._flush = None
        waiters, self._waiters = self._waiters, []
        self._wake_some(waiters, 0, keepalive)

    def _wake_some(self, waiters: list[asyncio.Future[bool | None]], start: int,
                   keepalive: bool | None) -> None:
        end = start + WAKE_PER_ITERATION
        for waiter in waiters[start:end]:
            if not waiter.done():  # a subscriber that went away has cancelled its own
                waiter.set_result(keepalive)
        if end < len(waiters) and self._loop is not None:
            self._loop.call_soon(self._wake_some, waiters, end, keepalive)

    def _keepalive_tick(self) -> None:
        # Wakes everyone: those with nothing new write a keep-alive comment.
        assert self._loop is not None
        self._tick = self._loop.call_later(self.keepalive, self._keepalive_tick)
        if self._flush is not None:
            self._flush.cancel()
        self._wake_waiters(True)

    def _trim(self) -> None:
        while len(self._log) > self.max_events or (
                self._bytes > self.max_bytes and len(self._log) > 1):
            frame = self._log.popleft().frame
            self._first += 1
            if frame is not None:
                self._bytes -= len(frame)

    def _encode(self, entry: _Entry) -> bytes:
        event = entry.event
        assert event is not None
        try:
            data = event_json(self.server, event)
            frame = f"event: {event.name}\ndata: {json.dumps(data, default=str)}\n\n".encode()
            endpoint = data.get("endpoint")
            entry.endpoint = endpoint if isinstance(endpoint, str) else None
        except Exception:
            _throttled.log(logging.ERROR, "sse-encode", "cannot encode a %s event for SSE",
                           event.name, exc_info=True)
            frame = b""
        entry.frame = frame
        entry.event = None
        self._bytes += len(frame)
        self.encoded += 1
        return frame

    def end_streams(self) -> None:
        """End every stream (the web server is stopping): each completes its response,
        rather than being cut off when the server stops waiting for it."""
        self.ending = True
        self._wake_waiters(None)

    # -- subscribers ------------------------------------------------------------------------

    def _open(self) -> int:
        if self._unsubscribe is None:
            self._loop = loop = asyncio.get_running_loop()
            self._unsubscribe = self.server.events.subscribe(self._publish)
            self._tick = loop.call_later(self.keepalive, self._keepalive_tick)
        self.subscribers += 1
        return self._end

    def _close(self) -> None:
        self.subscribers -= 1
        if self.subscribers == 0 and self._unsubscribe is not None:
            # Nobody listens: stop collecting events (sequence numbers stay monotonic).
            self._unsubscribe()
            self._unsubscribe = None
            for timer in (self._tick, self._flush):
                if timer is not None:
                    timer.cancel()
            self._tick = self._flush = None
            self._waiters.clear()
            self._first = self._end
            self._log.clear()
            self._bytes = 0
            if self.remote is not None and self._remote_watch is not None:
                self._remote_watch = None
                self.remote.unwatch()

    def _take(self, cursor: int, endpoint: str | None) -> bytes:
        """The frames from ``cursor`` to the end, for ``endpoint`` (None: all)."""
        entries = list(itertools.islice(self._log, cursor - self._first, None))
        parts = []
        for entry in entries:
            frame = entry.frame if entry.frame is not None else self._encode(entry)
            if frame and (endpoint is None or entry.endpoint == endpoint):
                parts.append(frame)
        if self._bytes > self.max_bytes:
            self._trim()
        return b"".join(parts)

    async def _wait(self) -> bool | None:
        """Until there may be something new; True when it is time for a keep-alive, None
        when the stream is to end."""
        assert self._loop is not None
        # One future per subscriber: a subscriber that is cancelled cancels only its own.
        waiter: asyncio.Future[bool | None] = self._loop.create_future()
        self._waiters.append(waiter)
        return await waiter

    async def stream(self, endpoint: str | None = None) -> AsyncIterator[bytes]:
        """The SSE byte stream of one subscriber, from the next event on."""
        cursor = self._open()
        try:
            if self.remote is not None:
                if self._remote_watch is None:
                    self._remote_watch = asyncio.ensure_future(self.remote.watch())
                # Opened once every node publishes: from here on nothing is missed.
                await asyncio.shield(self._remote_watch)
            yield OPENING
            while not self.ending:
                if cursor == self._end:
                    keepalive = await self._wait()
                    if keepalive is None:
                        return
                    if cursor == self._end:
                        if keepalive:
                            yield KEEPALIVE
                        continue
                if cursor < self._first:
                    missed = self._first - cursor
                    self.dropped += 1
                    _throttled.warning("sse-dropped", "SSE subscriber dropped: %d events "
                                       "behind", missed)
                    yield dropped_frame(
                        f"slow reader: fell more than {self.max_events} events or "
                        f"{self.max_bytes} bytes behind", missed)
                    return
                end = self._end
                data = self._take(cursor, endpoint)
                cursor = end
                if data:
                    yield data
        finally:
            self._close()
