"""Queue mode: which clients are awake, and the persisted queue of requests for the others.

A queue-mode client is reachable for ``awake_time`` after it last spoke (Register, Update,
Send, a notification). Requests for it while it sleeps are stored with a TTL and sent, in
order, the next time it wakes; each request's result is stored and announced.

Delivery is **at least once**. A queued request stays pending until its response is
stored; if the server stops (or crashes) after sending it and before storing the result,
the request is still pending after the restart and is sent again when the client next
wakes. Reads, Discovers, Observes and Writes of the same values are harmless twice; an
Execute (say, a reboot or a firmware update) or a Create may not be.

For those, queue the request **at most once** (``server.send(..., at_most_once=True)``,
``?at_most_once=true`` in the REST API): before it is sent, it is marked ``in-flight`` and
that mark is committed. A request found ``in-flight`` when the server starts is not sent
again but finished as ``failed`` with ``{"outcome": "unknown"}``: the client may or may not
have carried it out, and the operator decides. A request whose mark cannot be committed
(the store failed) stays pending and is tried at the client's next wake.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.lwm2m.operations import (
    Operation,
    Response,
    describe,
    operation_from_dict,
    operation_to_dict,
    response_to_dict,
)
from aiolwm2m.store.interfaces import QueueStore
from aiolwm2m.store.records import (
    DONE,
    EXPIRED,
    FAILED,
    PENDING,
    QueuedRequest,
    Registration,
)

from .config import ServerConfig
from .deadlines import Deadlines
from .events import Awake, Event, QueuedRequestFinished, Sleeping

log = logging.getLogger(__name__)

Sender = Callable[[Registration, Operation], Awaitable[Response]]


#: The result of an at-most-once request found in flight at a restart.
UNKNOWN_OUTCOME: dict[str, object] = {
    "error": "unknown outcome: the server stopped while this at-most-once request was in "
             "flight; it was not sent again", "outcome": "unknown"}


class QueueExpired(Exception):
    """The queued request's TTL ran out before the client woke up."""


class QueueMode:
    def __init__(self, store: QueueStore, config: ServerConfig, emit: Callable[[Event], None],
                 sender: Sender) -> None:
        self.store = store
        self.config = config
        self.emit = emit
        self.sender = sender
        self.awake = Deadlines()
        self._sleeping_regs: dict[str, Registration] = {}
        self._waiters: dict[str, asyncio.Future[Response]] = {}
        self._flushing: dict[str, asyncio.Lock] = {}
        self._tasks = BackgroundTasks(log, "sending a queue")
        #: Pending requests across all clients (kept here so metrics read it for free).
        self.depth = 0
        #: Transports that know whether a client is reachable, by name (HTTP/2: its
        #: downlink stream is open): for their registrations this replaces the awake window.
        self.presence: dict[str, Callable[[Registration], bool]] = {}
        #: End devices behind a gateway (``aiolwm2m.gateway``): end device registration id
        #: -> its gateway's. They are awake when their gateway is, and their queues are
        #: sent after the gateway's own (``resolve`` gives their current registration).
        self.behind: dict[str, str] = {}
        self.resolve: Callable[[str], Registration | None] | None = None
        self._queued_behind: dict[str, set[str]] = {}

    async def load(self) -> None:
        """After a restart: at-most-once requests caught in flight are finished as failed,
        of unknown outcome (never sent again)."""
        now = self.config.clock()
        for request in await self.store.in_flight():
            done = await self.store.finish(request.id, FAILED, dict(UNKNOWN_OUTCOME), now)
            log.warning("queued request %s for %s was in flight when the server stopped; "
                        "marked failed (unknown outcome), not sent again", request.id,
                        request.endpoint)
            if done is not None:
                self.emit(QueuedRequestFinished(done))
        self.depth = await self.store.depth()

    def is_awake(self, reg: Registration) -> bool:
        present = self.presence.get(reg.transport) if self.presence else None
        if present is not None:
            return present(reg)
        if not reg.queue_mode or self.awake.deadline(reg.id) is not None:
            return True
        gateway = self.behind.get(reg.id) if self.behind else None
        return gateway is not None and self.awake.deadline(gateway) is not None

    def woke(self, reg: Registration) -> None:
        """``reg`` just spoke to us: it is awake for awake_time, and its queue is sent."""
        if not reg.queue_mode or (self.presence and reg.transport in self.presence):
            return  # presence-reporting transports flush when the device becomes present
        was_awake = self.awake.deadline(reg.id) is not None
        self.awake.schedule(reg.id, self.config.clock() + self.config.awake_time)
        self._sleeping_regs[reg.id] = reg
        if not was_awake:
            self.emit(Awake(reg))
        self._tasks.spawn(self.flush(reg))

    def presence_changed(self, reg: Registration, present: bool) -> None:
        """A presence-reporting transport saw ``reg`` become reachable (its queue is sent)
        or unreachable."""
        if present:
            self.emit(Awake(reg))
            self._tasks.spawn(self.flush(reg))
        else:
            self.emit(Sleeping(reg))

    def forget(self, reg: Registration) -> None:
        self.awake.cancel(reg.id)
        self._sleeping_regs.pop(reg.id, None)

    def sleep_due(self) -> None:
        for rid in self.awake.pop_due(self.config.clock()):
            reg = self._sleeping_regs.pop(rid, None)
            if reg is not None:
                self.emit(Sleeping(reg))

    async def enqueue(self, reg: Registration, op: Operation, ttl: float | None = None, *,
                      at_most_once: bool = False) -> QueuedRequest:
        now = self.config.clock()
        operation = operation_to_dict(op)
        gateway = self.behind.get(reg.id) if self.behind else None
        if gateway is not None:
            # Marked, so that only the end device gets it (never an ordinary client that
            # registered the same text as its endpoint name), and sent after its gateway's.
            operation["end_device"] = True
            self._queued_behind.setdefault(gateway, set()).add(reg.id)
        request = QueuedRequest(
            id=secrets.token_urlsafe(9), endpoint=reg.endpoint, operation=operation,
            created_at=now, expires_at=now + (self.config.queue_ttl if ttl is None else ttl),
            at_most_once=at_most_once)
        await self.store.push(request)
        self.depth += 1
        log.info("queued %s for sleeping %s as %s%s", describe(op), reg.endpoint, request.id,
                 " (at most once)" if at_most_once else "")
        return request

    def waiter(self, request_id: str) -> asyncio.Future[Response]:
        fut = self._waiters.get(request_id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._waiters[request_id] = fut
        return fut

    async def flush(self, reg: Registration) -> None:
        lock = self._flushing.setdefault(reg.endpoint, asyncio.Lock())
        end_device = bool(self.behind) and reg.id in self.behind
        async with lock:
            for request in await self.store.pending(reg.endpoint):
                if self.presence and not self._present(reg):
                    return  # its stream closed meanwhile: the rest waits for the next one
                if bool(request.operation.get("end_device")) is not end_device:
                    continue  # the same text names an end device and a client: not ours
                now = self.config.clock()
                if request.expires_at <= now:
                    await self._finish(request, EXPIRED, None, None, QueueExpired(request.id))
                    continue
                if request.at_most_once:
                    try:
                        started = await self.store.start(request.id, now)
                    except Exception as e:
                        log.warning("cannot record queued request %s as in flight (%s); it "
                                    "stays queued until %s wakes again", request.id, e,
                                    reg.endpoint)
                        return
                    if started is None:
                        continue  # finished meanwhile (expired)
                try:
                    op = operation_from_dict(request.operation)
                    response = await self.sender(reg, op)
                except Exception as e:
                    await self._finish(request, FAILED, {"error": str(e)}, None, e)
                    continue
                await self._finish(request, DONE, response_to_dict(response), response, None)
        children = self._queued_behind.pop(reg.id, None) if self._queued_behind else None
        if children and self.resolve is not None:
            for child_id in sorted(children):
                child = self.resolve(child_id)
                if child is not None:
                    await self.flush(child)

    def _present(self, reg: Registration) -> bool:
        present = self.presence.get(reg.transport)
        return present is None or present(reg)

    async def expire_due(self) -> None:
        for request in await self.store.expired(self.config.clock()):
            await self._finish(request, EXPIRED, None, None, QueueExpired(request.id))

    async def purge(self) -> None:
        await self.store.purge_finished(self.config.clock() - self.config.queue_result_retention)

    async def _finish(self, request: QueuedRequest, state: str, result: dict[str, object] | None,
                      response: Response | None, error: BaseException | None) -> None:
        done = await self.store.finish(request.id, state, result, self.config.clock())
        if done is not None and request.state == PENDING:
            self.depth = max(0, self.depth - 1)
        fut = self._waiters.pop(request.id, None)
        if fut is not None and not fut.done():
            if response is not None:
                fut.set_result(response)
            else:
                fut.set_exception(error or QueueExpired(request.id))
        if done is not None:
            self.emit(QueuedRequestFinished(done))

    def close(self) -> None:
        self._tasks.cancel_all()
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
