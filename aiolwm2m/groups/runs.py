"""One group operation: the same request sent to every member, a bounded number at a time,
each member's result recorded and streamed as it comes.

* **Concurrency**: ``concurrency`` workers share one iterator over the members, so a fan-out
  to 10,000 devices holds ``concurrency`` exchanges and coroutines, not 10,000.
* **Sleeping members** (queue mode): the request is queued for the member (persisted, sent
  when it wakes, see ``aiolwm2m.server.queue_mode``) and the worker moves on; the member's
  result is first ``queued`` (with the queued request's id), then final when the queue
  delivers it or its TTL passes (``expired``). The run is done when every member has a
  final result.
* **Results**: ``ok`` (the device answered 2.xx), ``error`` (it answered 4.xx/5.xx),
  ``failed`` (no answer, a transport error, or a value its model cannot take),
  ``not-registered``, ``queued`` (not final), ``expired``. They are kept in the order they
  came (a queued member appears twice), so a subscriber that comes late replays them all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from aiolwm2m.coap.errors import CoapError
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.operations import Operation, Response
from aiolwm2m.server.errors import NotRegistered, RequestFailed
from aiolwm2m.server.queue_mode import QueueExpired
from aiolwm2m.store.records import QueuedRequest

log = logging.getLogger(__name__)
_throttled = LogThrottle(log)

OK, ERROR, FAILED = "ok", "error", "failed"
NOT_REGISTERED, QUEUED, EXPIRED = "not-registered", "queued", "expired"
RUNNING, DONE, CANCELLED = "running", "done", "cancelled"
FINAL_STATUSES = (OK, ERROR, FAILED, NOT_REGISTERED, EXPIRED)

#: Sends one member its request now, or queues it while the member sleeps.
Submit = Callable[[str, Operation], Coroutine[Any, Any, "Response | QueuedRequest"]]
#: The future of a queued request's response.
Waiter = Callable[[str], "asyncio.Future[Response]"]
#: The request for one member (values are typed by each member's own model).
OperationFor = Callable[[str], Operation]


@dataclass(frozen=True, slots=True)
class MemberResult:
    endpoint: str
    status: str
    #: Seconds since the run started.
    elapsed: float
    response: Response | None = None
    #: Why it failed, for failed/expired/not-registered.
    detail: str | None = None
    #: The queued request (queued members, and their final result).
    request_id: str | None = None
    #: What was sent (one shared object when every member gets the same request).
    operation: Operation | None = None

    @property
    def final(self) -> bool:
        return self.status != QUEUED


class GroupRun:
    def __init__(self, run_id: str, group: str, operation: str, path: str,
                 members: list[str], *, concurrency: int, op_for: OperationFor,
                 submit: Submit, waiter: Waiter, truncated: bool = False) -> None:
        self.id = run_id
        self.group = group
        #: The operation's kind ("read", "write"...) and target, for display.
        self.operation = operation
        self.path = path
        self.members = members
        #: Whether the group resolved to more members than it may have (the rest were left
        #: out; see GroupLimits.max_members).
        self.truncated = truncated
        self.concurrency = max(1, min(concurrency, len(members) or 1))
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.state = RUNNING
        #: Every result in the order it came (queued members twice: queued, then final).
        self.results: list[MemberResult] = []
        #: Members by their latest status.
        self.counts: Counter[str] = Counter()
        self._op_for = op_for
        self._submit = submit
        self._waiter = waiter
        self._t0 = time.monotonic()
        self._open_queued = 0
        self._workers_done = False
        self._done = asyncio.Event()
        self._next: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"group run {self.id}")

    async def _run(self) -> None:
        members: Iterator[str] = iter(self.members)

        async def worker() -> None:
            for endpoint in members:  # shared: each member is taken by one worker
                await self._one(endpoint)

        try:
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        finally:
            self._workers_done = True
            self._maybe_done()

    async def _one(self, endpoint: str) -> None:
        try:
            op = self._op_for(endpoint)
        except NotRegistered:
            self._add(MemberResult(endpoint, NOT_REGISTERED, self._elapsed(),
                                   detail="not registered"))
            return
        except (LwM2MError, ValueError, TypeError, KeyError) as e:
            self._add(MemberResult(endpoint, FAILED, self._elapsed(), detail=str(e)[:200]))
            return
        except Exception as e:  # a caller's op_for that breaks fails its member, not the run
            _throttled.warning("group-op-for", "group run %s: building the request for %s "
                               "failed: %r", self.id, endpoint, e)
            self._add(MemberResult(endpoint, FAILED, self._elapsed(),
                                   detail=f"internal error: {type(e).__name__}"))
            return
        try:
            outcome = await self._submit(endpoint, op)
        except NotRegistered:
            self._add(MemberResult(endpoint, NOT_REGISTERED, self._elapsed(),
                                   detail="not registered"))
            return
        except (RequestFailed, CoapError, TimeoutError, OSError, LwM2MError) as e:
            self._add(MemberResult(endpoint, FAILED, self._elapsed(),
                                   detail=str(e)[:200] or type(e).__name__, operation=op))
            return
        except Exception as e:  # one member's surprise must not stop the others
            _throttled.warning("group-member", "group run %s: %s on %s failed: %r", self.id,
                               self.operation, endpoint, e)
            self._add(MemberResult(endpoint, FAILED, self._elapsed(),
                                   detail=f"internal error: {type(e).__name__}", operation=op))
            return
        if isinstance(outcome, QueuedRequest):
            self._add(MemberResult(endpoint, QUEUED, self._elapsed(), request_id=outcome.id,
                                   operation=op))
            self._open_queued += 1
            self._waiter(outcome.id).add_done_callback(
                functools.partial(self._queued_done, endpoint, outcome.id, op))
            return
        self._add(MemberResult(endpoint, OK if outcome.success else ERROR, self._elapsed(),
                               response=outcome, operation=op))

    def _queued_done(self, endpoint: str, request_id: str, op: Operation,
                     fut: asyncio.Future[Response]) -> None:
        self._open_queued -= 1
        if self.state != RUNNING:
            return
        elapsed = self._elapsed()
        if fut.cancelled():
            result = MemberResult(endpoint, FAILED, elapsed, request_id=request_id,
                                  detail="the server stopped before the member woke",
                                  operation=op)
        elif isinstance(fut.exception(), QueueExpired):
            result = MemberResult(endpoint, EXPIRED, elapsed, request_id=request_id,
                                  detail="the member did not wake before the request's TTL",
                                  operation=op)
        elif fut.exception() is not None:
            result = MemberResult(endpoint, FAILED, elapsed, request_id=request_id,
                                  detail=str(fut.exception())[:200], operation=op)
        else:
            response = fut.result()
            result = MemberResult(endpoint, OK if response.success else ERROR, elapsed,
                                  response=response, request_id=request_id, operation=op)
        self._add(result)
        self._maybe_done()

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _add(self, result: MemberResult) -> None:
        if self.state != RUNNING:
            return
        if result.final and result.request_id is not None:
            self.counts[QUEUED] -= 1
        self.counts[result.status] += 1
        self.results.append(result)
        self._wake()

    def _wake(self) -> None:
        waiting, self._next = self._next, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _maybe_done(self) -> None:
        if self.state == RUNNING and self._workers_done and self._open_queued == 0:
            self._finish(DONE)

    def _finish(self, state: str) -> None:
        self.state = state
        self.finished_at = time.time()
        self._done.set()
        self._wake()

    def cancel(self) -> bool:
        """Stop: members not reached yet are not sent the request (requests already queued
        for sleeping members stay queued). False if the run had finished."""
        if self.state != RUNNING:
            return False
        if self._task is not None:
            self._task.cancel()
        self._finish(CANCELLED)
        return True

    # -- watching -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.state != RUNNING

    async def wait(self) -> GroupRun:
        await self._done.wait()
        return self

    async def follow(self, start: int = 0) -> AsyncIterator[MemberResult]:
        """Every result from the ``start``-th on, as they come, until the run is over."""
        index = start
        while True:
            while index < len(self.results):
                yield self.results[index]
                index += 1
            if self.done:
                return
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._next)

    def summary(self) -> dict[str, int]:
        """Members by status (final ones, plus those still queued)."""
        return {status: n for status, n in self.counts.items() if n > 0}
