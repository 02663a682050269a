"""Events of every node for the server-sent-event subscribers of every node.

A node publishes its events only while some node has subscribers: encoding and appending
an event costs, and a fleet registering 30,000 times a second would pay it for no one.
A node whose first subscriber arrives asks every live node to start ("watch") and opens
the subscriber's stream once they have answered, so that every event from then on reaches
it; the last subscriber's departure tells them to stop ("unwatch"). Heartbeats carry
whether a node watches, which mends what a lost notice or a dead watcher left behind.

Each node appends to ``NS:{n:NODE}:ev`` (approximately capped) and reads every other live
node's stream with ``XREAD BLOCK``, from where that stream stood when the node first saw
the other one alive. What arrives goes to the local subscribers as the same JSON the
origin node encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.server.events import Event, EventBus
from aiolwm2m.store.redis_keys import Keys

from .bus import BLOCK_MS, READ_COUNT, NodeBus, end_readers, last_entry_id
from .membership import Membership

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=10.0, burst=3)

WATCH = "watch"
UNWATCH = "unwatch"
#: How long a node's first subscriber waits for the other nodes to start publishing.
WATCH_TIMEOUT = 3.0
#: Events a node holds for publishing while Redis is slow, before it drops the oldest.
MAX_PENDING = 10_000

#: What the web layer gives: an event as the JSON object its subscribers get, and where
#: a remote event's (name, endpoint, JSON text) goes.
Encoder = Callable[[Event], dict[str, Any]]
Sink = Callable[[str, str | None, str], None]


class ClusterEvents:
    def __init__(self, client: Any, keys: Keys, membership: Membership, bus: NodeBus,
                 events: EventBus, *, max_len: int = 10_000) -> None:
        self.client = client
        self.keys = keys
        self.node = membership.node
        self.membership = membership
        self.bus = bus
        self.max_len = max_len
        self.stream = keys.node(self.node, "ev")
        #: Nodes that asked for this node's events (they have subscribers), with the epoch
        #: of their asking.
        self.watchers: dict[str, int] = {}
        #: Whether this node has subscribers of its own, and how many times it started
        #: watching (a heartbeat that says "not watching" counts only if it is not older
        #: than the watch it would end).
        self.watching = False
        self.watch_epoch = 0
        self.encode: Encoder | None = None
        self.sink: Sink | None = None
        self.published = 0
        self.received = 0
        self.dropped = 0
        self._pending: list[tuple[str, str | None, str]] = []
        self._flushing = False
        self._readers: dict[str, asyncio.Task[None]] = {}
        #: Readers of nodes that left, finishing their last XREAD.
        self._retiring: set[asyncio.Task[None]] = set()
        #: Done once a reader knows where the other node's stream stands.
        self._positioned: dict[str, asyncio.Future[None]] = {}
        self._tasks = BackgroundTasks(log, "publishing events")
        self._unsubscribe = events.subscribe(self._on_event)
        bus.handlers[WATCH] = self._watch_request
        bus.notices[UNWATCH] = self._unwatch_notice
        membership.on_join.append(self._joined)
        membership.on_leave.append(self._left)

    def attach(self, encode: Encoder, sink: Sink) -> None:
        """The web layer's encoder (``event_json``) and its subscribers' sink."""
        self.encode = encode
        self.sink = sink

    # -- publishing -----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not self.watchers or self.encode is None:
            return
        try:
            data = self.encode(event)
            text = json.dumps(data, default=str)
            endpoint = data.get("endpoint")
        except Exception:
            _throttled.log(logging.ERROR, "encode", "cannot encode a %s event for other "
                           "nodes", event.name, exc_info=True)
            return
        if len(self._pending) >= MAX_PENDING:
            del self._pending[0]
            self.dropped += 1
        self._pending.append((event.name, endpoint if isinstance(endpoint, str) else None,
                              text))
        if not self._flushing:
            self._flushing = True
            self._tasks.spawn(self._flush())

    async def _flush(self) -> None:
        # One pipeline for the events of a loop iteration (and whatever piles up while it
        # is sent).
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                pipe = self.client.pipeline(transaction=False)
                for name, endpoint, text in batch:
                    fields = {"n": name, "d": text}
                    if endpoint is not None:
                        fields["e"] = endpoint
                    pipe.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)
                try:
                    await pipe.execute()
                    self.published += len(batch)
                except Exception as e:
                    self.dropped += len(batch)
                    _throttled.warning("publish", "node %s: %d events not published: %s",
                                       self.node, len(batch), e)
        finally:
            self._flushing = False

    async def _watch_request(self, sender: str, body: bytes) -> bytes:
        epoch = int(body or b"0")
        self.watchers[sender] = max(epoch, self.watchers.get(sender, 0))
        return b"ok"

    def _unwatch_notice(self, sender: str, body: bytes) -> None:
        self.watchers.pop(sender, None)

    def heard(self, node: str, watching: bool, epoch: int) -> None:
        """A heartbeat said whether ``node`` watches (mends a lost notice)."""
        if watching:
            self.watchers[node] = max(epoch, self.watchers.get(node, 0))
        elif node in self.watchers and epoch >= self.watchers[node]:
            del self.watchers[node]

    # -- subscribing ----------------------------------------------------------------------

    async def watch(self) -> None:
        """This node's first subscriber: every live node publishes from when this returns."""
        self.watching = True
        self.watch_epoch += 1
        peers = self.membership.peers()
        if not peers:
            return
        # Read from where their streams stand now, before they start appending.
        positions = [f for n, f in self._positioned.items() if n in peers]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*positions), WATCH_TIMEOUT)
        results = await asyncio.gather(
            *(self.bus.request(peer, WATCH, str(self.watch_epoch).encode(), WATCH_TIMEOUT)
              for peer in peers),
            return_exceptions=True)
        for peer, result in zip(peers, results, strict=True):
            if isinstance(result, BaseException):
                _throttled.warning("watch", "node %s: node %s did not start publishing its "
                                   "events: %s", self.node, peer, result or "timed out")

    def unwatch(self) -> None:
        """This node's last subscriber left."""
        self.watching = False
        for peer in self.membership.peers():
            self.bus.notify_soon(peer, UNWATCH, b"")

    # -- reading the others' events ---------------------------------------------------------

    def _joined(self, node: str) -> None:
        if node != self.node and node not in self._readers:
            self._positioned[node] = asyncio.get_running_loop().create_future()
            self._readers[node] = asyncio.create_task(self._read(node),
                                                      name=f"events of {node}")

    def _left(self, node: str) -> None:
        self.watchers.pop(node, None)
        self._positioned.pop(node, None)
        reader = self._readers.pop(node, None)
        if reader is not None:
            # It sees that it is no longer the node's reader after its current XREAD.
            self._retiring.add(reader)
            reader.add_done_callback(self._retiring.discard)

    async def _read(self, node: str) -> None:
        stream = self.keys.node(node, "ev")
        position = None
        me = asyncio.current_task()
        while self._readers.get(node) is me:
            try:
                if position is None:
                    position = last_entry_id(await self.client.xrevrange(stream, count=1))
                    positioned = self._positioned.get(node)
                    if positioned is not None and not positioned.done():
                        positioned.set_result(None)
                replies = await self.client.xread({stream: position}, count=READ_COUNT,
                                                  block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _throttled.warning("read", "node %s: reading node %s's events failed: %s",
                                   self.node, node, e)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in replies or ():
                for entry_id, fields in entries:
                    position = (entry_id.decode() if isinstance(entry_id, bytes)
                                else str(entry_id))
                    self._deliver(fields)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        sink = self.sink
        if sink is None or not self.watching:
            return
        name = fields.get(b"n", b"").decode("utf-8", "replace")
        text = fields.get(b"d", b"").decode("utf-8", "replace")
        raw = fields.get(b"e")
        endpoint = raw.decode("utf-8", "replace") if raw is not None else None
        self.received += 1
        sink(name, endpoint, text)

    async def stop(self) -> None:
        self._unsubscribe()
        readers = {*self._readers.values(), *self._retiring}
        self._readers.clear()  # each reader ends after its current XREAD
        if readers:
            await end_readers(readers)
        self._tasks.cancel_all()
