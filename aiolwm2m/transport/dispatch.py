"""Serving requests from a :class:`Site`: error mapping, block-wise, observe, slow handlers.

One dispatcher belongs to one transport endpoint; the endpoint tells it about each new
request and the dispatcher answers through the small :class:`ServerTransport` interface, so
the same code serves UDP, DTLS, TCP and TLS.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiolwm2m.coap.blockwise import Block1Assembler, Block2Server
from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.errors import CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.observe import Observation, ObserverRegistry
from aiolwm2m.coap.options import OptionNumber
from aiolwm2m.log_throttle import LogThrottle

from .site import HeldResponse, RenderResult, Resource, Site

Reply = Message | HeldResponse

log = logging.getLogger(__name__)
_handler_failures = LogThrottle(log, interval=10.0, burst=5)

_BLOCK1, _BLOCK2, _OBSERVE = OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE
# Requests carrying any of these leave the fast path.
_SPECIAL = frozenset({int(_BLOCK1), int(_BLOCK2), int(_OBSERVE)})


class ServerTransport(Protocol):
    def send_response(self, request: Message, response: Message) -> None: ...

    def acknowledge(self, request: Message) -> None: ...

    def send_notification(self, observation: Observation, notification: Message) -> None: ...


def error_response(request: Message, exc: BaseException) -> Message:
    if isinstance(exc, CoapRequestError):
        return request.response(exc.code, exc.diagnostic.encode(), 0 if exc.diagnostic else None)
    # Throttled: a fault that hits every request (a store that went away) must not write a
    # traceback per request.
    _handler_failures.log(logging.ERROR, "handler-failure", "request handler failed for %s %s",
                          code_str(request.code), request.path, exc_info=exc)
    return request.response(Code.INTERNAL_SERVER_ERROR, b"internal error", 0)


class _EagerRun:
    """A handler coroutine driven by future callbacks instead of a Task."""

    __slots__ = ("coro", "dispatcher", "finished", "key", "observe_on", "request")

    def __init__(self, dispatcher: RequestDispatcher, request: Message,
                 coro: Coroutine[Any, Any, Reply], observe_on: Resource | None) -> None:
        self.dispatcher = dispatcher
        self.request = request
        self.coro = coro
        self.observe_on = observe_on
        self.finished = False
        self.key = 0

    def step(self, _future: object = None) -> None:
        if self.finished:
            return  # closed while it waited (the dispatcher shut down)
        try:
            yielded = self.coro.send(None)
        except StopIteration as stop:
            self.finished = True
            self.dispatcher._eager_done(self, stop.value, None)
            return
        except BaseException as exc:
            self.finished = True
            self.dispatcher._eager_done(self, None, exc)
            return
        if yielded is None:
            # a bare yield (asyncio.sleep(0)): resume on the next loop iteration
            asyncio.get_running_loop().call_soon(self.step)
        elif getattr(yielded, "_asyncio_future_blocking", False):
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(self.step)
        else:
            self.coro.throw(RuntimeError(f"eager handler yielded {yielded!r}"))


class _HeldGroup:
    """Held replies waiting for one future: (request, reply, observe_on, _unanswered key
    or 0 when the group's own empty-ACK deadline covers the request, plain)."""

    __slots__ = ("acked", "replies")

    def __init__(self) -> None:
        self.replies: list[tuple[Message, HeldResponse, Resource | None, int, bool]] = []
        self.acked = False


class RequestDispatcher:
    def __init__(
        self,
        site: Site,
        transport: ServerTransport,
        *,
        clock: Callable[[], float] = time.monotonic,
        empty_ack_delay: float | None = 1.0,
        preferred_szx: int = 6,
        max_body_size: int = 1 << 20,
        observers: ObserverRegistry | None = None,
    ) -> None:
        self.site = site
        self.transport = transport
        self.clock = clock
        # None: the transport acknowledges by itself (TCP), so nothing is tracked for it.
        self.empty_ack_delay = empty_ack_delay
        self.block1 = Block1Assembler(max_body_size=max_body_size, preferred_szx=preferred_szx)
        self.block2 = Block2Server(preferred_szx=preferred_szx)
        # Not ``observers or ...``: an empty registry is falsy, and was replaced.
        self.observers = observers if observers is not None else ObserverRegistry()
        self._unblocked_limit = 1 << (preferred_szx + 4)
        self._tasks: set[asyncio.Future[Any]] = set()
        # Keyed by a serial number, not id(request): a request object freed after its
        # answer may hand its id to a newer request, which the older request's entry in
        # _ack_due would then acknowledge early.
        self._unanswered: dict[int, Message] = {}
        self._serial = itertools.count(1)
        # Entries are a request's key in _unanswered, or a group of held replies.
        self._ack_due: collections.deque[tuple[float, int | asyncio.Future[None]]] = (
            collections.deque())
        self._ack_timer: asyncio.TimerHandle | None = None
        self._eager_runs: set[_EagerRun] = set()
        # Replies waiting for their write to be durable, grouped by what they wait for: one
        # group commit serves many, and the group, not each reply, is timed for empty ACKs.
        self._held: dict[asyncio.Future[None], _HeldGroup] = {}
        site.attach(self)

    def close(self) -> None:
        self.site.detach(self)
        for run in list(self._eager_runs):
            run.finished = True
            run.coro.close()
        self._eager_runs.clear()
        self._held.clear()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        for task in list(self._tasks):
            task.cancel()

    # -- requests -------------------------------------------------------------------------

    def handle(self, request: Message, now: float) -> None:
        """Serve one new (deduplicated, well-formed) request."""
        special = False
        for n, _ in request.options:
            if n in _SPECIAL:
                special = True
                break
        if special:
            self._handle_special(request, now)
            return
        try:
            resource = self.site.find(request)
            result = resource.render(request)
        except Exception as e:
            self.transport.send_response(request, error_response(request, e))
            return
        rtype = type(result)
        if rtype is Message:
            if len(result.payload) > self._unblocked_limit:  # type: ignore[union-attr]
                result = self.block2.serve(request, result, now)  # type: ignore[arg-type]
            self.transport.send_response(request, result)  # type: ignore[arg-type]
        elif rtype is HeldResponse:
            self._hold(request, result, None, plain=True)  # type: ignore[arg-type]
        elif resource.eager:
            self._eager(request, result, None)  # type: ignore[arg-type]
        else:
            self._await(request, result, None)  # type: ignore[arg-type]

    def _eager(self, request: Message, coro: Coroutine[Any, Any, Reply],
               observe_on: Resource | None) -> None:
        """Run a handler coroutine without a Task (for resources with ``eager = True``).

        It runs at once, up to its first suspension, and is resumed straight from the
        callback of the future it waits for. That saves the Task's object and its extra
        loop hops, which is a third of the cost of a registration; the price is that
        ``asyncio.current_task()`` is None inside, so such handlers must not rely on it.
        """
        run = _EagerRun(self, request, coro, observe_on)
        self._eager_runs.add(run)
        run.step()
        if not run.finished:
            run.key = self._acknowledge_if_late(request)

    def _eager_done(self, run: _EagerRun, response: Reply | None,
                    error: BaseException | None) -> None:
        self._eager_runs.discard(run)
        self._unanswered.pop(run.key, None)
        if error is not None:
            self._finish(run.request, error_response(run.request, error), None)
        else:
            assert response is not None
            self._finish(run.request, response, run.observe_on)

    def _handle_special(self, request: Message, now: float) -> None:
        if request.get_option(_BLOCK1) is not None:
            fed = self.block1.feed(request, now)
            if fed is not request:
                self.transport.send_response(request, fed)
                return
        if request.get_option(_BLOCK2) is not None:
            cached = self.block2.cached_block(request, now)
            if cached is not None:
                self.transport.send_response(request, cached)
                return
        observe = request.observe
        if observe == 1:
            self.observers.remove(request.remote, request.token)
        try:
            resource = self.site.find(request)
            result = resource.render(request)
        except Exception as e:
            self.transport.send_response(request, error_response(request, e))
            return
        register = (observe == 0 and resource.observable
                    and request.code in (Code.GET, Code.FETCH)
                    and resource.admits_observer(request))
        if isinstance(result, Message | HeldResponse):
            self._finish(request, result, resource if register else None)
        elif resource.eager:
            self._eager(request, result, resource if register else None)  # type: ignore[arg-type]
        else:
            self._await(request, result, resource if register else None)

    def _await(self, request: Message, result: Awaitable[Reply],
               observe_on: Resource | None) -> None:
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        key = self._acknowledge_if_late(request)

        def done(t: asyncio.Future[Reply]) -> None:
            self._tasks.discard(t)
            self._unanswered.pop(key, None)
            if t.cancelled():
                return
            exc = t.exception()
            response: Reply
            if exc is not None:
                response = error_response(request, exc)
                observe = None
            else:
                response = t.result()
                observe = observe_on
            self._finish(request, response, observe)

        task.add_done_callback(done)

    def _acknowledge_if_late(self, request: Message) -> int:
        """Have ``request`` acknowledged if still unanswered after empty_ack_delay; returns
        the key to drop from ``_unanswered`` once it is answered. One sweeping timer serves
        every request: a timer each would cost a heap push and a cancel per request."""
        if self.empty_ack_delay is None:
            return 0
        key = next(self._serial)
        self._unanswered[key] = request
        self._ack_later(key)
        return key

    def _ack_later(self, key: int | asyncio.Future[None]) -> None:
        if self.empty_ack_delay is None:
            return
        loop = asyncio.get_running_loop()
        self._ack_due.append((loop.time() + self.empty_ack_delay, key))
        if self._ack_timer is None:
            self._ack_timer = loop.call_later(self.empty_ack_delay, self._acknowledge_late)

    def _acknowledge_late(self) -> None:
        loop = asyncio.get_running_loop()
        self._ack_timer = None
        now = loop.time()
        due = self._ack_due
        while due and due[0][0] <= now:
            _, key = due.popleft()
            if isinstance(key, int):
                request = self._unanswered.pop(key, None)
                if request is not None:
                    self.transport.acknowledge(request)
                continue
            group = self._held.get(key)
            if group is not None:
                group.acked = True
                for request, *_ in group.replies:
                    self.transport.acknowledge(request)
        if due:
            self._ack_timer = loop.call_later(due[0][0] - now, self._acknowledge_late)

    def _hold(self, request: Message, held: HeldResponse, observe_on: Resource | None, *,
              plain: bool = False) -> None:
        """``plain``: the request came by the fast path (no block-wise or observe options),
        so its reply needs none of _finish's checks unless it is too large for one block."""
        until = held.until
        if until.done():
            self._release_one(request, held, observe_on, plain)
            return
        group = self._held.get(until)
        if group is None:
            group = self._held[until] = _HeldGroup()
            until.add_done_callback(self._release)
            self._ack_later(until)
        # Joining a group whose empty ACKs went out already: timed on its own.
        key = self._acknowledge_if_late(request) if group.acked else 0
        group.replies.append((request, held, observe_on, key, plain))

    def _release(self, until: asyncio.Future[None]) -> None:
        group = self._held.pop(until, None)
        if group is None:
            return
        unanswered = self._unanswered
        for request, held, observe_on, key, plain in group.replies:
            if key:
                unanswered.pop(key, None)
            self._release_one(request, held, observe_on, plain)

    def _release_one(self, request: Message, held: HeldResponse,
                     observe_on: Resource | None, plain: bool) -> None:
        until = held.until
        error = (CoapRequestError("the write was abandoned", Code.SERVICE_UNAVAILABLE)
                 if until.cancelled() else until.exception())
        if error is None and held.then is not None:
            try:
                held.then()
            except Exception as e:
                error = e
        elif error is not None and held.undo is not None:
            try:
                held.undo()
            except Exception:
                log.exception("undoing a write that did not commit failed")
        if error is not None:
            self._finish(request, error_response(request, error), None)
        elif plain and len(held.response.payload) <= self._unblocked_limit:
            self.transport.send_response(request, held.response)
        else:
            self._finish(request, held.response, observe_on)

    def _finish(self, request: Message, response: Reply, observe_on: Resource | None) -> None:
        if type(response) is HeldResponse:
            self._hold(request, response, observe_on)
            return
        assert type(response) is Message
        now = self.clock()
        if request.get_option(_BLOCK1) is not None and response.get_option(_BLOCK1) is None:
            # The final response of a Block1 transfer echoes the last block (RFC 7959 2.3).
            response.set_option(_BLOCK1, request.get_option(_BLOCK1))
        if observe_on is not None and 64 <= response.code < 96:
            self.observers.add(request, observe_on, now)
            response.set_option(_OBSERVE, self.observers.initial_sequence())
        if self.block2.needs_slicing(request, response):
            response = self.block2.serve(request, response, now)
        self.transport.send_response(request, response)

    # -- observe --------------------------------------------------------------------------

    def notify(self, resource: Resource, accept: Callable[[Observation], bool] | None) -> None:
        for obs in self.observers.observers(resource):
            if accept is None or accept(obs):
                self.notify_observation(obs)

    def notify_observation(self, obs: Observation, *, confirmable: bool | None = None) -> None:
        """Render the observed request again and send the result as a notification."""
        resource = obs.key
        assert isinstance(resource, Resource)
        try:
            result = resource.render(obs.request)
        except Exception as e:
            self._send_notification(obs, error_response(obs.request, e), confirmable)
            return
        if type(result) is Message:
            self._send_notification(obs, result, confirmable)
            return
        task = asyncio.ensure_future(_settled(result))
        self._tasks.add(task)

        def done(t: asyncio.Future[Message]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            msg = error_response(obs.request, exc) if exc is not None else t.result()
            self._send_notification(obs, msg, confirmable)

        task.add_done_callback(done)

    def _send_notification(self, obs: Observation, msg: Message,
                           confirmable: bool | None) -> None:
        if self.observers.get(obs.peer, obs.token) is not obs:
            return  # cancelled while rendering
        now = self.clock()
        if len(msg.payload) > self._unblocked_limit:
            # Only the first block travels; the client fetches the rest (RFC 7959 3.4).
            req = obs.request.copy()
            req.remove_option(_BLOCK2)
            msg = self.block2.serve(req, msg, now)
        notification = self.observers.prepare(obs, msg, now, confirmable)
        self.transport.send_notification(obs, notification)

    def observer_lost(self, peer: object, token: bytes) -> Observation | None:
        """A notification was reset or never acknowledged: forget the observer."""
        return self.observers.remove(peer, token)

    def observer_acknowledged(self, peer: object, token: bytes) -> None:
        """A Confirmable notification reached its observer (which proves its address)."""
        obs = self.observers.get(peer, token)
        if obs is not None:
            self.observers.acknowledged(obs)


async def _settled(result: RenderResult) -> Message:
    """The message a render result comes to, held replies waited for."""
    if isinstance(result, Message):
        return result
    if isinstance(result, HeldResponse):
        return await result.resolved()
    value = await result
    return await value.resolved() if isinstance(value, HeldResponse) else value
