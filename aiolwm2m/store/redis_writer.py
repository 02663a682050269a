"""Group commit for Redis: the writes of one event-loop iteration go out as one pipeline.

The Redis stores keep their reads in memory (as the SQLite ones do) and send every change
through one :class:`RedisWriter`. Writes submitted during one loop iteration form a batch
with one future; batches go out in order, as one pipeline while none is in flight, or
together with every batch that queued meanwhile (so under load many requests share a round
trip, while an idle store sends each write at once). A batch's future completes when Redis
has answered all its commands: the request path holds its reply until then, so what it
acknowledges is in Redis (and on disk as Redis is configured to fsync: ``appendonly yes``
with ``appendfsync always`` for "nothing acknowledged is lost" even on a power cut,
``everysec`` for at most a second of acknowledged writes on a machine crash).

Order is the contract: one pipeline at a time, commands in submission order, so a later
write of an endpoint never overtakes an earlier one.

When Redis goes away (connection refused or reset, a timeout, ``OOM``, ``READONLY``,
``LOADING``, a Cluster without coverage...), the batches in flight fail (their outcome is
unknown: the caller answers 5.00 and takes the change back in memory), the writer's state
becomes ``restarting`` (the request path answers 5.03 with Max-Age, see
:meth:`retry_after`) and it tries again after a back-off (``restart_delay_min`` doubling
up to ``restart_delay_max``). Nothing is dropped meanwhile: the batches that failed and
every write submitted since stay queued, in order, and are sent once Redis answers again;
every write the stores send is idempotent (it sets a state), so sending a batch Redis may
already have applied is harmless, and what Redis holds converges to what the server holds
in memory, undo writes included. A queued write's future fails after ``hold_timeout`` (its
caller should not wait on an outage) but the write itself stays queued. Past ``max_held``
queued commands new writes fail at once and are not queued (logged, counted in
``dropped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aiolwm2m.log_throttle import LogThrottle

from .redis_scripts import ALL as ALL_SCRIPTS
from .sqlite_writer import WRITER_CLOSED, WRITER_OK, WRITER_RESTARTING

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=10.0, burst=3)

#: One command: the arguments of ``execute_command`` (``("EVALSHA", sha, 2, k1, k2, ...)``).
Command = tuple[Any, ...]

#: Errors that say Redis cannot take writes now (rather than that a command is wrong).
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, OutOfMemoryError,
                ReadOnlyError, ClusterDownError, TryAgainError, RedisClusterException)
_UNAVAILABLE_PREFIXES = ("MISCONF", "LOADING", "NOREPLICAS", "BUSY", "MASTERDOWN",
                         "CLUSTERDOWN", "TRYAGAIN")
#: Most commands in one pipeline (a backlog after an outage goes out in parts).
_MAX_PIPELINE = 5000
#: Pauses before sending again the commands a Redis Cluster refused because their slot is
#: being migrated (TRYAGAIN: some of a script's keys moved, the others not yet; redis-py
#: retries for a fraction of a second only). A refused command did not run, so sending it
#: again cannot apply it twice. After the last pause the writer treats Redis as lost.
_MIGRATION_PAUSES = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


class RedisWriteFailed(Exception):
    """Redis did not acknowledge the write (its outcome is unknown), or refused it."""


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(_UNAVAILABLE_PREFIXES)


def _migrating(error: object) -> bool:
    """A Cluster refused the command while its slot moves (it did not run)."""
    return isinstance(error, TryAgainError | ClusterError) or (
        isinstance(error, ResponseError) and str(error).startswith("TRYAGAIN"))


class _Batch:
    __slots__ = ("commands", "future", "held_since", "results")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.commands: list[Command] = []
        self.future = future
        #: Futures of the commands whose reply a caller wants, by index in ``commands``.
        self.results: dict[int, asyncio.Future[Any]] = {}
        self.held_since: float | None = None

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)
        for fut in self.results.values():
            if not fut.done():
                fut.set_exception(error)


class RedisWriter:
    def __init__(self, client: Any, *, target: str, restart_delay_min: float = 0.1,
                 restart_delay_max: float = 5.0, hold_timeout: float = 5.0,
                 max_held: int = 100_000) -> None:
        #: ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
        self.client = client
        #: host:port for messages (never the password).
        self.target = target
        self.restart_delay_min = restart_delay_min
        self.restart_delay_max = restart_delay_max
        self.hold_timeout = hold_timeout
        self.max_held = max_held
        self._loop = asyncio.get_running_loop()
        self._pending: _Batch | None = None
        self._outbox: deque[_Batch] = deque()
        self._queued_commands = 0
        self._sender: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._probe_timer: asyncio.TimerHandle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._next_delay = restart_delay_min
        #: WRITER_OK, WRITER_RESTARTING (Redis is unreachable; retrying) or WRITER_CLOSED.
        self.state = WRITER_OK
        #: Times Redis came back after being lost.
        self.restarts = 0
        self.last_error: str | None = None
        self.retry_at = 0.0
        self.restart_delay = 0.0
        #: Pipelines Redis answered, and commands sent (for group-commit checks).
        self.commits = 0
        self.statements = 0
        #: Writes refused because too many were already held during an outage.
        self.dropped = 0

    # -- submitting -----------------------------------------------------------------------

    def _batch(self) -> _Batch:
        batch = self._pending
        if batch is None:
            batch = self._pending = _Batch(self._loop.create_future())
            self._loop.call_soon(self._hand_over)
        return batch

    def _refuse(self, count: int) -> RedisWriteFailed | None:
        if self.state == WRITER_CLOSED:
            return RedisWriteFailed("the store is closed")
        if self._queued_commands + count > self.max_held:
            self.dropped += count
            _throttled.warning("held", "Redis at %s: %d writes already wait for it; "
                               "refusing more", self.target, self._queued_commands)
            return RedisWriteFailed("too many writes wait for Redis")
        return None

    def submit(self, commands: Sequence[Command]) -> asyncio.Future[None]:
        """Queue writes; the returned future (shared by every write of this event-loop
        iteration) completes once Redis has answered them."""
        refused = self._refuse(len(commands))
        if refused is not None:
            fut: asyncio.Future[None] = self._loop.create_future()
            fut.set_exception(refused)
            return fut
        batch = self._batch()
        batch.commands.extend(commands)
        self._queued_commands += len(commands)
        return batch.future

    def call(self, command: Command) -> asyncio.Future[Any]:
        """Queue one command, in order with the writes, and get its reply."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        refused = self._refuse(1)
        if refused is not None:
            fut.set_exception(refused)
            return fut
        batch = self._batch()
        batch.results[len(batch.commands)] = fut
        batch.commands.append(command)
        self._queued_commands += 1
        return fut

    def _hand_over(self) -> None:
        batch, self._pending = self._pending, None
        if batch is None:
            return
        self._outbox.append(batch)
        if self.state == WRITER_OK:
            self._start_sender()
        else:
            batch.held_since = self._loop.time()
            self._arm_hold_timer()

    def _start_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_all())

    # -- sending --------------------------------------------------------------------------

    async def _send_all(self) -> None:
        while self._outbox and self.state != WRITER_RESTARTING:
            batches: list[_Batch] = []
            count = 0
            for batch in self._outbox:
                if batches and count + len(batch.commands) > _MAX_PIPELINE:
                    break
                batches.append(batch)
                count += len(batch.commands)
            try:
                replies = await self._execute([c for b in batches for c in b.commands])
            except Exception as e:
                if _unavailable(e):
                    self._lost(e)
                    return
                log.exception("Redis at %s: a pipeline failed", self.target)
                failed: BaseException = RedisWriteFailed(f"{type(e).__name__}: {e}")
                replies = [failed] * count
            for batch in batches:
                self._outbox.popleft()
                self._queued_commands -= len(batch.commands)
                self._settle(batch, replies[:len(batch.commands)])
                replies = replies[len(batch.commands):]

    async def _execute(self, commands: list[Command]) -> list[Any]:
        """One pipeline; loads the scripts and sends it again when Redis forgot them (it
        restarted). Raises what says Redis is unavailable, per-command included."""
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            self.statements += len(commands)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            self.commits += 1
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                await self.load_scripts()
                continue
            if any(_migrating(r) for r in replies):
                await self._resend_migrating(commands, replies)
            for reply in replies:
                if isinstance(reply, BaseException) and _unavailable(reply):
                    raise reply
            return replies
        raise RedisWriteFailed("Redis keeps forgetting the store's scripts")

    async def _resend_migrating(self, commands: list[Command], replies: list[Any]) -> None:
        """Send again, in their order, the commands refused during a slot migration, until
        Redis takes them or the pauses run out (their replies replace the refusals)."""
        for pause in _MIGRATION_PAUSES:
            again = [i for i, r in enumerate(replies) if _migrating(r)]
            if not again:
                return
            await asyncio.sleep(pause)
            pipe = self.client.pipeline(transaction=False)
            for i in again:
                pipe.execute_command(*commands[i])
            self.statements += len(again)
            for i, reply in zip(again, await pipe.execute(raise_on_error=False),
                                strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if _migrating(reply) and not isinstance(reply, _UNAVAILABLE):
                replies[i] = TryAgainError(str(reply))  # unavailable: held, then retried

    def _settle(self, batch: _Batch, replies: list[Any]) -> None:
        error: BaseException | None = None
        for i, reply in enumerate(replies):
            fut = batch.results.get(i)
            if fut is not None:
                # A command whose reply a caller takes is that caller's to judge (a fenced
                # write refused for one endpoint fails no other request of the batch).
                if fut.done():
                    continue
                if isinstance(reply, BaseException):
                    fut.set_exception(RedisWriteFailed(f"Redis refused a write: {reply}"))
                else:
                    fut.set_result(reply)
            elif isinstance(reply, BaseException):
                error = error or reply
        if batch.future.done():
            return  # failed when Redis was lost; now written all the same
        if error is None:
            batch.future.set_result(None)
        else:
            log.error("Redis at %s refused a write: %s", self.target, error)
            batch.future.set_exception(RedisWriteFailed(f"Redis refused a write: {error}"))

    async def load_scripts(self) -> None:
        """``SCRIPT LOAD`` every script (on every primary of a Cluster)."""
        for script in ALL_SCRIPTS:
            await self.client.script_load(script.body)

    # -- Redis lost, and back --------------------------------------------------------------

    def _lost(self, error: BaseException) -> None:
        reason = f"Redis at {self.target} unavailable: {type(error).__name__}: {error}"
        first = self.state == WRITER_OK
        self.state = WRITER_RESTARTING
        self.last_error = reason
        unknown = RedisWriteFailed(f"{reason}; the write was not acknowledged")
        now = self._loop.time()
        for batch in self._outbox:
            batch.fail(unknown)
            if batch.held_since is None:
                batch.held_since = now
        delay = self._back_off()
        if first:
            log.error("%s; %d writes held, retrying in %.1f s", reason, self._queued_commands,
                      delay)
        self.retry_at = now + delay
        self._probe_timer = self._loop.call_later(delay, self._begin_probe)

    def _back_off(self) -> float:
        delay = self.restart_delay = self._next_delay
        self._next_delay = min(self.restart_delay_max, delay * 2)
        return delay

    def _begin_probe(self) -> None:
        self._probe_timer = None
        self._probe = self._loop.create_task(self._try_again())

    async def _try_again(self) -> None:
        try:
            await self.load_scripts()  # answers only once Redis takes commands again
        except Exception as e:
            self._probe = None
            if not _unavailable(e):
                log.exception("Redis at %s: unexpected error while reconnecting",
                              self.target)
            self.last_error = f"Redis at {self.target} unavailable: {type(e).__name__}: {e}"
            _throttled.warning("down", "%s; %d writes held", self.last_error,
                               self._queued_commands)
            delay = self._back_off()
            self.retry_at = self._loop.time() + delay
            self._probe_timer = self._loop.call_later(delay, self._begin_probe)
            return
        self._probe = None
        self.state = WRITER_OK
        self.restarts += 1
        self._next_delay = self.restart_delay_min
        log.warning("Redis at %s is back (recovery %d); sending %d held writes", self.target,
                    self.restarts, self._queued_commands)
        self._start_sender()

    def _arm_hold_timer(self, delay: float | None = None) -> None:
        if self._hold_timer is None:
            self._hold_timer = self._loop.call_later(
                self.hold_timeout if delay is None else delay, self._hold_expired)

    def _hold_expired(self) -> None:
        """Fail the futures of writes held for ``hold_timeout`` (the writes stay queued),
        and look again when the next one's time is up."""
        self._hold_timer = None
        if self.state == WRITER_OK:
            return
        now = self._loop.time()
        error = RedisWriteFailed(f"Redis at {self.target} unavailable for "
                                 f"{self.hold_timeout:g} s; the write stays queued")
        next_due: float | None = None
        for batch in self._outbox:
            if batch.future.done() or batch.held_since is None:
                continue
            due = batch.held_since + self.hold_timeout
            if due <= now:
                batch.fail(error)
            elif next_due is None or due < next_due:
                next_due = due
        if next_due is not None:
            self._arm_hold_timer(next_due - now)

    def retry_after(self) -> float:
        """Seconds until the writer tries Redis again (0 when it is available)."""
        if self.state != WRITER_RESTARTING:
            return 0.0
        return max(0.0, self.retry_at - self._loop.time())

    # -- closing --------------------------------------------------------------------------

    async def aclose(self, timeout: float = 10.0) -> None:
        """Send what is queued (one more attempt when Redis is unavailable), then close."""
        if self.state == WRITER_CLOSED:
            return
        self._hand_over()
        if self.state == WRITER_RESTARTING:
            if self._probe_timer is not None:
                self._probe_timer.cancel()
                self._probe_timer = None
            if self._probe is None:
                self._begin_probe()
            probe = self._probe
            if probe is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(probe), timeout)
        if self.state == WRITER_OK and self._outbox:
            self._start_sender()
        sender = self._sender
        if sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(sender), timeout)
        for timer in (self._probe_timer, self._hold_timer):
            if timer is not None:
                timer.cancel()
        if self._probe is not None:
            self._probe.cancel()
        if self._outbox:
            log.error("Redis at %s: %d writes could not be sent before closing",
                      self.target, self._queued_commands)
        error = RedisWriteFailed("the store is closed")
        for batch in self._outbox:
            batch.fail(error)
        self._outbox.clear()
        self.state = WRITER_CLOSED
        await self.client.aclose()
