"""CoAP over UDP on asyncio: a thin adapter around the sans-IO message layer.

The socket is read with ``loop.add_reader`` and drained on every wake-up, which is what makes
a Python CoAP server fast: one event-loop iteration serves a whole batch of datagrams, and the
replies of a batch are written back before the loop sleeps again.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

from aiolwm2m.coap.amplification import ERROR_REPLY_SLACK
from aiolwm2m.coap.blockwise import Block1Sender, Block2Collector
from aiolwm2m.coap.errors import EndpointClosed
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import (
    Exchange,
    ExchangeFailed,
    MessageAcknowledged,
    MessageLayer,
    MessageRejected,
    MessageTimedOut,
    ResponseReceived,
)
from aiolwm2m.coap.observe import Observation, ObserverRegistry
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters

from .dispatch import RequestDispatcher
from .site import Site
from .subscription import ResponseSink, Subscription
from .wakeup import Wakeup

log = logging.getLogger(__name__)

Address = tuple[Any, ...]
RECEIVE_BATCH = 256


# Compiled (aiolwm2m.compiled), yet extended by the DTLS and client endpoints.
@mypyc_attr(allow_interpreted_subclasses=True)
class UdpEndpoint:
    """One UDP socket serving a :class:`Site` and sending requests of its own."""

    def __init__(self, sock: socket.socket, *, site: Site | None = None,
                 params: TransmissionParameters = DEFAULT_PARAMETERS,
                 clock: Callable[[], float] = time.monotonic,
                 observers: ObserverRegistry | None = None,
                 error_reply_slack: int | None = ERROR_REPLY_SLACK) -> None:
        """``error_reply_slack``: error replies are cut to at most this many bytes more
        than their request, since a NoSec peer's source address may be a forged victim's
        (see :mod:`aiolwm2m.coap.amplification`); None for endpoints whose peers proved
        their address (DTLS)."""
        self.sock = sock
        self.family = sock.family
        self.clock = clock
        self.params = params
        self.layer = MessageLayer(params, now=clock(), error_reply_slack=error_reply_slack)
        self.site = site if site is not None else Site()
        self.dispatcher = RequestDispatcher(self.site, self, clock=clock,
                                            empty_ack_delay=params.empty_ack_delay,
                                            observers=observers)
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._wakeup = Wakeup(self.loop, clock, self._on_timer)
        self._in_batch = False
        self._io_scheduled = False
        self._backlog: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._addr_cache: dict[tuple[str, int], Address] = {}
        self.loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def create(cls, host: str = "::", port: int = 0, **kwargs: Any) -> UdpEndpoint:
        """Bind to ``host``/``port``; ``::`` listens on IPv6 and IPv4 alike."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return cls(sock, **kwargs)

    @property
    def local_address(self) -> Address:
        return tuple(self.sock.getsockname())

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    # -- receive path ---------------------------------------------------------------------

    def _on_readable(self) -> None:
        recv = self.sock.recvfrom
        layer = self.layer
        handle = self.dispatcher.handle
        now = self.clock()
        self._in_batch = True
        try:
            for _ in range(RECEIVE_BATCH):
                try:
                    data, addr = recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    # ICMP errors for earlier sends surface here on Linux; nothing to do.
                    log.debug("recvfrom: %s", e)
                    continue
                request = layer.receive(data, addr, now)
                if request is not None:
                    handle(request, now)
        finally:
            self._in_batch = False
        self._after_io()

    def _after_io(self) -> None:
        layer = self.layer
        if layer.outbox:
            self._flush()
        if layer.events:
            self._process_events()
        self._wakeup.at(self.layer.next_deadline())

    def _flush(self) -> None:
        out = self.layer.outbox
        self._send_all(out)
        out.clear()

    def _send_all(self, out: list[tuple[bytes, Any]]) -> None:
        """Send datagrams in order; once the socket is full, the rest (and everything
        after, until the backlog drains) waits in the backlog, so nothing overtakes."""
        if self._backlog:
            self._backlog.extend(out)
            return
        sendto: Callable[[bytes, Any], int] = self.sock.sendto
        for i, (data, addr) in enumerate(out):
            try:
                sendto(data, addr)
            except BlockingIOError:
                self._backlog.extend(out[i:])
                self.loop.add_writer(self.sock.fileno(), self._on_writable)
                return
            except OSError as e:
                log.debug("sendto %s: %s", addr, e)

    def _on_writable(self) -> None:
        backlog = self._backlog
        while backlog:
            data, addr = backlog[0]
            try:
                self.sock.sendto(data, addr)
            except BlockingIOError:
                return
            except OSError as e:
                log.debug("sendto %s: %s", addr, e)
            backlog.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def _process_events(self) -> None:
        events = self.layer.events
        self.layer.events = []
        for ev in events:
            if isinstance(ev, ResponseReceived):
                user = ev.exchange.user
                if isinstance(user, asyncio.Future):
                    if not user.done():
                        user.set_result(ev.response)
                elif user is not None:
                    user.on_response(ev.response)
            elif isinstance(ev, ExchangeFailed):
                user = ev.exchange.user
                if isinstance(user, asyncio.Future):
                    if not user.done():
                        user.set_exception(ev.error)
                elif user is not None:
                    user.on_error(ev.error)
            elif isinstance(ev, MessageRejected | MessageTimedOut):
                self.dispatcher.observer_lost(ev.peer, ev.token)
            elif isinstance(ev, MessageAcknowledged):
                self.dispatcher.observer_acknowledged(ev.peer, ev.token)

    def _on_timer(self) -> None:
        self.layer.handle_timers(self.clock())
        self._after_io()

    # -- ServerTransport ------------------------------------------------------------------

    def send_response(self, request: Message, response: Message) -> None:
        self.layer.respond(request, response, self.clock())
        self._io_soon()

    def acknowledge(self, request: Message) -> None:
        self.layer.acknowledge(request, self.clock())
        self._io_soon()

    def send_notification(self, observation: Observation, notification: Message) -> None:
        self.layer.send_message(notification, observation.peer, self.clock())
        self._io_soon()

    def _io_soon(self) -> None:
        """Flush once per loop iteration: replies completed by one callback burst (say,
        every registration of one group commit) leave in one pass."""
        if not self._in_batch and not self._io_scheduled:
            self._io_scheduled = True
            self.loop.call_soon(self._scheduled_io)

    def _scheduled_io(self) -> None:
        self._io_scheduled = False
        self._after_io()

    # -- client API -----------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> Address:
        """The socket-level form of ``host``/``port``, as recvfrom() will report it."""
        key = (host, port)
        cached = self._addr_cache.get(key)
        if cached is not None:
            return cached
        flags = socket.AI_V4MAPPED if self.family == socket.AF_INET6 else 0
        try:
            ipaddress.ip_address(host)
            infos = socket.getaddrinfo(host, port, self.family, socket.SOCK_DGRAM, 0,
                                       flags | socket.AI_NUMERICHOST)
        except ValueError:
            infos = await self.loop.getaddrinfo(host, port, family=self.family,
                                                type=socket.SOCK_DGRAM, flags=flags)
        if not infos:
            raise OSError(f"cannot resolve {host!r}")
        addr: Address = tuple(infos[0][4])
        if len(self._addr_cache) < 4096:
            self._addr_cache[key] = addr
        return addr

    async def _normalize(self, remote: Address) -> Address:
        if self.family == socket.AF_INET6:
            if len(remote) == 4:
                return remote
            host = remote[0]
            if ":" in host and "%" not in host:
                return (host, remote[1], 0, 0)
        elif len(remote) == 2 and remote[0][:1].isdigit():
            return remote
        return await self.resolve(str(remote[0]), int(remote[1]))

    def new_token(self) -> bytes:
        return self.layer.new_token()

    def identity_of(self, remote: Address) -> str | None:
        """The authenticated identity of a peer; plain UDP has none."""
        return None

    async def _exchange(self, request: Message, remote: Address,
                        timeout: float | None) -> Message:
        if self.closed:
            raise EndpointClosed("endpoint is closed")
        fut: asyncio.Future[Message] = self.loop.create_future()
        ex = self.layer.send_request(request, remote, self.clock(), timeout)
        ex.user = fut
        self._after_io()
        try:
            return await fut
        except asyncio.CancelledError:
            self.layer.cancel(ex, self.clock())
            raise

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message:
        """Send ``request`` and return its response, with block-wise transfers done
        transparently in both directions."""
        remote = await self._normalize(remote)
        if len(request.payload) > (1 << (block_szx + 4)):
            sender = Block1Sender(request, block_szx)
            while True:
                part = sender.next_request()
                part.token = b""
                response = await self._exchange(part, remote, timeout)
                if sender.on_response(response):
                    break
        else:
            response = await self._exchange(request, remote, timeout)
        block = response.block2
        if block is not None and block.more:
            response = await self.complete_blocks(request, response, remote, timeout)
        return response

    async def exchange(self, request: Message, remote: Address, *,
                       timeout: float | None = None) -> Message:
        """One request and its response as it comes, with no block-wise transfer: for
        callers that walk the blocks themselves (a resumable firmware download)."""
        return await self._exchange(request, await self._normalize(remote), timeout)

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                               timeout: float | None = None) -> Message:
        collector = Block2Collector(request, first)
        while collector.more:
            nxt = collector.next_request()
            collector.add(await self._exchange(nxt, remote, timeout))
        return collector.result()

    async def observe(self, request: Message, remote: Address) -> Subscription:
        """Register an observation; the returned subscription's ``first`` future holds the
        initial response, iterating it yields the notifications."""
        remote = await self._normalize(remote)
        if request.observe is None:
            request.observe = 0
        if not request.token:
            request.token = self.layer.new_token()
        sub = Subscription(self, request.copy(), remote)
        ex = self.layer.send_request(request, remote, self.clock())
        ex.user = sub
        sub.exchange = ex
        self._after_io()
        first = await sub.first
        block = first.block2
        if block is not None and block.more:
            full = await self.complete_blocks(sub.request, first, remote)
            sub.first = self.loop.create_future()
            sub.first.set_result(full)
        return sub

    async def observe_with(self, request: Message, remote: Address, sink: ResponseSink
                           ) -> Exchange:
        """Send an observe request whose responses (the first one included) all go to
        ``sink``; returns the exchange, whose token identifies the observation."""
        remote = await self._normalize(remote)
        ex = self.layer.send_request(request, remote, self.clock())
        ex.user = sink
        self._after_io()
        return ex

    async def resume_observation(self, request: Message, remote: Address, sink: ResponseSink
                                 ) -> Exchange:
        """Route notifications carrying ``request.token`` to ``sink`` (after a restart)."""
        remote = await self._normalize(remote)
        ex = self.layer.resume_observation(request, remote)
        ex.user = sink
        return ex

    def forget(self, exchange: Exchange) -> None:
        """Stop routing an exchange's responses; later notifications get a Reset."""
        self.layer.cancel(exchange, self.clock())
        self._after_io()

    async def ping(self, remote: Address, timeout: float | None = None) -> float:
        """CoAP ping; returns the round-trip time in seconds."""
        remote = await self._normalize(remote)
        start = self.clock()
        fut: asyncio.Future[Message] = self.loop.create_future()
        ex = self.layer.send_ping(remote, start)
        ex.user = fut
        self._after_io()
        if timeout is not None:
            await asyncio.wait_for(fut, timeout)
        else:
            await fut
        return self.clock() - start

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.dispatcher.close()
        self.loop.remove_reader(self.sock.fileno())
        if self._backlog:
            self.loop.remove_writer(self.sock.fileno())
        self._wakeup.cancel()
        self.layer.fail_all(EndpointClosed("endpoint closed"))
        self._process_events()
        self.sock.close()

    async def __aenter__(self) -> UdpEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

