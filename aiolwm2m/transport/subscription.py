"""Observations we hold on remote resources, the same for every transport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiolwm2m.coap.errors import CoapError, EndpointClosed
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange


class ResponseSink(Protocol):
    """Receives the responses of a long-lived exchange (an observation)."""

    def on_response(self, msg: Message) -> None: ...

    def on_error(self, error: BaseException) -> None: ...


class ObservingEndpoint(Protocol):
    closed: bool

    def forget(self, exchange: Exchange) -> None: ...

    async def request(self, request: Message, remote: Any, *, timeout: float | None = None,
                      block_szx: int = 6) -> Message: ...

    async def complete_blocks(self, request: Message, first: Message, remote: Any,
                              timeout: float | None = None) -> Message: ...


class Subscription:
    """An observation: ``first`` holds the initial response, iterating yields notifications
    (large ones completed block-wise)."""

    def __init__(self, endpoint: ObservingEndpoint, request: Message, remote: Any) -> None:
        self.endpoint = endpoint
        self.request = request
        self.remote = remote
        self.exchange: Exchange | None = None
        self.first: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._queue: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self.active = True

    def on_response(self, msg: Message) -> None:
        if not self.first.done():
            self.first.set_result(msg)
            if msg.observe is None:
                self.active = False
            return
        self._queue.put_nowait(msg)

    def on_error(self, error: BaseException) -> None:
        self.active = False
        if not self.first.done():
            self.first.set_exception(error)
        else:
            self._queue.put_nowait(error)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        if not self.active and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise StopAsyncIteration from item
        if item.observe is None:
            self.active = False
        block = item.block2
        if block is not None and block.more:
            item = await self.endpoint.complete_blocks(self.request, item, self.remote)
        return item

    async def cancel(self, *, active: bool = True) -> None:
        """Stop observing: actively with GET Observe=1 (the default; the only way over TCP,
        which has no Reset), or passively by forgetting the token so that the next
        notification is answered with a Reset (UDP)."""
        if self.exchange is not None:
            self.endpoint.forget(self.exchange)
        was_active = self.active
        self.active = False
        self._queue.put_nowait(EndpointClosed("observation cancelled"))
        if active and was_active and not self.endpoint.closed:
            req = self.request.copy()
            req.observe = 1
            with contextlib.suppress(CoapError):
                await self.endpoint.request(req, self.remote, timeout=10.0)
