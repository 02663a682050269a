"""Node-to-node messages through Redis Streams: one inbox stream per node.

``NS:{n:NODE}:in`` holds what other nodes send the node: requests (a REST request for a
device it owns, "who is registered here"), the answers to its own requests, and notices
(an endpoint moved to another node, credentials changed). Each entry is a small hash::

    k     "q" (request), "a" (answer) or "n" (notice)
    id    the sender's message id (requests and notices), ``re`` the request answered
    from  the sending node
    op    what is asked or told ("http", "registrations", "moved", ...)
    b     the body (bytes); for an answer ``ok`` says whether it is one or an error text

A node reads its inbox with ``XREAD BLOCK`` from where it stood when it started (what was
sent to an earlier run of it is not answered: the asker timed out), trims what it has read,
and appends with an approximate ``MAXLEN`` so that an inbox nobody reads stays bounded.
A stream, unlike pub/sub, keeps what arrives while the reader's connection is being
re-established, and both are plain keys in one slot each on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.redis_keys import Keys

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=10.0, burst=3)

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]
NoticeHandler = Callable[[str, bytes], None]
#: How long one XREAD blocks (below the client's socket timeout); also how long a stopping
#: reader may take to notice (an answer comes back as soon as there is one to read).
BLOCK_MS = 250
#: How long a stopping node waits for a stream reader to end, beyond its XREAD's block.
READER_STOP_TIMEOUT = 2.0
#: Entries taken per XREAD.
READ_COUNT = 256
#: The inbox is trimmed of what was read once this many entries or seconds have passed
#: (a trim per read would cost a round trip per routed request under load).
TRIM_EVERY = 256
TRIM_INTERVAL = 1.0


async def end_readers(readers: set[asyncio.Task[None]]) -> None:
    """Wait for stream readers told to stop to see it (within their XREAD's block), and
    only then cancel what is left. A cancelled blocking XREAD is what hung stops before:
    redis-py's cluster client can hold one until its connection closes, and a task that
    outlives its loop's end is waited for forever when the loop closes. Bounded."""
    _done, left = await asyncio.wait(readers, timeout=BLOCK_MS / 1000 + READER_STOP_TIMEOUT)
    for task in left:
        task.cancel()
    if left:
        await asyncio.wait(left, timeout=READER_STOP_TIMEOUT)


class BusError(Exception):
    """The other node answered with an error, or could not be asked."""


def last_entry_id(entries: Any) -> str:
    """The id of the last entry an XREVRANGE ... COUNT 1 answered, else "0-0"."""
    if not entries:
        return "0-0"
    entry_id = entries[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class NodeBus:
    def __init__(self, client: Any, keys: Keys, node: str, *, max_len: int = 10_000) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.max_len = max_len
        self.inbox = keys.node(node, "in")
        self.handlers: dict[str, RequestHandler] = {}
        self.notices: dict[str, NoticeHandler] = {}
        self._ids = itertools.count(1)
        self._prefix = ""
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._reading = False
        self._tasks = BackgroundTasks(log, "a routed request")
        self._position = "0-0"
        self._untrimmed = 0
        self._trimmed_at = 0.0
        #: Appends waiting for this loop iteration's pipeline: (stream, fields, done).
        self._outgoing: list[tuple[str, dict[str, Any], asyncio.Future[None]]] = []
        self._sending = False
        #: Requests and notices sent and received, and requests that got no answer.
        self.sent = 0
        self.received = 0
        self.timeouts = 0

    async def start(self, incarnation: str) -> None:
        self._prefix = f"{self.node}.{incarnation}."
        self._position = last_entry_id(await self.client.xrevrange(self.inbox, count=1))
        self._reading = True
        self._reader = asyncio.create_task(self._read(), name=f"inbox {self.node}")

    async def stop(self) -> None:
        self._reading = False
        if self._reader is not None:
            await end_readers({self._reader})
            self._reader = None
        self._tasks.cancel_all()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(BusError("the node is stopping"))
        self._waiting.clear()

    # -- sending --------------------------------------------------------------------------

    async def _append(self, node: str, fields: dict[str, Any]) -> None:
        """Append to ``node``'s inbox; the appends of one loop iteration go out in one
        pipeline (a socket write per append was a fifth of a routed request's cost)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outgoing.append((self.keys.node(node, "in"), fields, done))
        if not self._sending:
            self._sending = True
            self._tasks.spawn(self._send_outgoing())
        await done

    async def _send_outgoing(self) -> None:
        batch: list[tuple[str, dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                try:
                    if len(batch) == 1:
                        stream, fields, _ = batch[0]
                        results: list[Any] = [await self.client.xadd(
                            stream, fields, maxlen=self.max_len, approximate=True)]
                    else:
                        pipe = self.client.pipeline(transaction=False)
                        for stream, fields, _ in batch:
                            pipe.xadd(stream, fields, maxlen=self.max_len, approximate=True)
                        results = await pipe.execute(raise_on_error=False)
                except Exception as e:
                    results = [e] * len(batch)
                for (_, _, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue
                    if isinstance(result, BaseException):
                        done.set_exception(result)
                    else:
                        done.set_result(None)
        finally:
            # Cancelled (the node stops): what was not sent fails rather than waits.
            self._sending = False
            left, self._outgoing = [*batch, *self._outgoing], []
            for _, _, done in left:
                if not done.done():
                    done.set_exception(BusError("the node is stopping"))

    async def request(self, node: str, op: str, body: bytes, timeout: float) -> bytes:
        """Ask ``node``; its answer's body. BusError when it answers with an error or the
        message cannot be sent, TimeoutError when no answer comes within ``timeout``."""
        message_id = f"{self._prefix}{next(self._ids)}"
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = fut
        try:
            try:
                await self._append(node, {"k": "q", "id": message_id, "from": self.node,
                                          "op": op, "b": body})
            except Exception as e:
                raise BusError(f"cannot reach node {node} through Redis: {e}") from None
            self.sent += 1
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                self.timeouts += 1
                raise
        finally:
            self._waiting.pop(message_id, None)

    async def notify(self, node: str, op: str, body: bytes) -> None:
        """Tell ``node`` something; no answer. Failures are logged, not raised."""
        try:
            await self._append(node, {"k": "n", "id": f"{self._prefix}{next(self._ids)}",
                                      "from": self.node, "op": op, "b": body})
            self.sent += 1
        except Exception as e:
            _throttled.warning("notify", "node %s: cannot tell node %s %s: %s", self.node,
                               node, op, e)

    def notify_soon(self, node: str, op: str, body: bytes) -> None:
        self._tasks.spawn(self.notify(node, op, body))

    # -- receiving ------------------------------------------------------------------------

    async def _read(self) -> None:
        while self._reading:
            try:
                replies = await self.client.xread({self.inbox: self._position},
                                                  count=READ_COUNT, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _throttled.warning("read", "node %s: reading its inbox failed: %s", self.node,
                                   e)
                await asyncio.sleep(0.5)
                continue
            last = None
            for _stream, entries in replies or ():
                for entry_id, fields in entries:
                    last = entry_id
                    self._untrimmed += 1
                    try:
                        self._dispatch(fields)
                    except Exception:
                        _throttled.log(logging.ERROR, "dispatch", "node %s: a message "
                                       "failed", self.node, exc_info=True)
            if last is not None:
                self._position = last.decode() if isinstance(last, bytes) else str(last)
            now = asyncio.get_running_loop().time()
            if self._untrimmed and (self._untrimmed >= TRIM_EVERY
                                    or now - self._trimmed_at >= TRIM_INTERVAL):
                self._untrimmed = 0
                self._trimmed_at = now
                with contextlib.suppress(Exception):
                    # What is read is done with: the inbox holds only what is unread.
                    await self.client.xtrim(self.inbox, minid=self._position)

    def _dispatch(self, fields: dict[bytes, bytes]) -> None:
        kind = fields.get(b"k")
        sender = fields.get(b"from", b"").decode()
        body = fields.get(b"b", b"")
        if kind == b"a":
            fut = self._waiting.get(fields.get(b"re", b"").decode())
            if fut is not None and not fut.done():
                if fields.get(b"ok") == b"1":
                    fut.set_result(body)
                else:
                    fut.set_exception(BusError(body.decode("utf-8", "replace")))
            return
        self.received += 1
        op = fields.get(b"op", b"").decode()
        if kind == b"n":
            notice = self.notices.get(op)
            if notice is not None:
                notice(sender, body)
            return
        if kind == b"q":
            self._tasks.spawn(self._answer(sender, fields.get(b"id", b"").decode(), op, body))

    async def _answer(self, sender: str, message_id: str, op: str, body: bytes) -> None:
        handler = self.handlers.get(op)
        answer: dict[str, Any] = {"k": "a", "re": message_id, "from": self.node}
        if handler is None:
            answer.update(ok="0", b=f"node {self.node} does not handle {op!r}")
        else:
            try:
                answer.update(ok="1", b=await handler(sender, body))
            except Exception as e:
                log.debug("node %s: %s from %s failed", self.node, op, sender, exc_info=True)
                answer.update(ok="0", b=f"{type(e).__name__}: {e}"[:500])
        try:
            await self._append(sender, answer)
        except Exception as e:
            _throttled.warning("answer", "node %s: cannot answer node %s: %s", self.node,
                               sender, e)
