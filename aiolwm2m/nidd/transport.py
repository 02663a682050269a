"""The server's NIDD transport: CoAP over the SCEF's T8 API, behind the same ``Endpoint``
interface as UDP, DTLS, TCP and TLS, so registrations, device management, observations
and Send work over it unchanged.

The sans-IO message layer and dispatcher are the UDP endpoint's; only the edges differ.
What the layer would write to a socket goes to :class:`~.downlink.Downlink` (one MT
delivery per datagram), and what the SCEF posts to the callback (NiddUplinkDataNotification)
is fed to the layer as a datagram from the device. A device's address is
``(identifier, 0)``, its identity ``nidd:<identifier>``: the network authenticated it, so
registrations are bound to it as to a DTLS identity (LPW-001).

Message identity (LPW-003/004): uplink notifications carry no T8 message id, and none is
needed: the CoAP Message ID and Token inside each packet drive duplicate detection and
response matching, exactly as over UDP. A replayed or re-sent uplink is a CoAP duplicate:
a CON gets its cached reply again, anything else is dropped; both are counted.

Acknowledgement (LPW-002): requests go NON by default, the SCEF's delivery status being
their acknowledgement: a delivery that fails (FAILURE_*, or dropped unsent) fails the
request at once with :class:`NiddDeliveryFailed`; a pending one (201, BUFFERING...) keeps
it waiting for the response until its time to live. With ``confirmable`` they go CON on
NIDD-sized timers, and retransmissions of a datagram the SCEF still holds are not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiolwm2m.coap.blockwise import Block1Sender, Block2Collector
from aiolwm2m.coap.codes import MessageType
from aiolwm2m.coap.errors import CoapError, EndpointClosed
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import (
    Exchange,
    ExchangeFailed,
    MessageLayer,
    MessageRejected,
    MessageTimedOut,
    ResponseReceived,
)
from aiolwm2m.coap.observe import Observation
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.transport.dispatch import RequestDispatcher
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.subscription import ResponseSink
from aiolwm2m.transport.wakeup import Wakeup

from .devices import principal
from .downlink import Datagram, Downlink

log = logging.getLogger(__name__)

Address = tuple[Any, ...]
NON = MessageType.NON
#: Smallest and largest block size exponent for block-wise transfers over NIDD.
_SZX_RANGE = range(0, 7)
#: Bytes of CoAP header and options a block carries besides its payload.
_BLOCK_OVERHEAD = 64
#: Of a request's own timeout, the part its data may spend reaching the device.
TTL_SHARE = 0.9


class NiddDeliveryFailed(CoapError):
    """The SCEF could not deliver a request to the device (or the server dropped it: time
    to live, quota, queue); ``reason`` is the DeliveryStatus or our own token."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"NIDD delivery failed: {reason}")
        self.reason = reason


def block_szx_for(packet_bits: int | None, default: int = 6) -> int:
    """The largest block size whose blocks fit ``packet_bits`` (maximumPacketSize)."""
    if packet_bits is None:
        return default
    room = packet_bits // 8 - _BLOCK_OVERHEAD
    best = 0
    for szx in _SZX_RANGE:
        if (16 << szx) <= room:
            best = szx
    return min(best, default)


class NiddEndpoint:
    scheme = "nidd"

    def __init__(self, downlink: Downlink, *, site: Site, params: TransmissionParameters,
                 ttl_of: Callable[[str], float], packet_bits_of: Callable[[str], int | None],
                 confirmable: bool = False, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.downlink = downlink
        self.params = params
        self.clock = clock
        self.ttl_of = ttl_of
        self.packet_bits_of = packet_bits_of
        self.confirmable = confirmable
        self.site = site
        self.layer = MessageLayer(params, now=clock())
        self.dispatcher = RequestDispatcher(site, self, clock=clock,
                                            empty_ack_delay=params.empty_ack_delay)
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._wakeup = Wakeup(self.loop, clock, self._on_timer)
        self._in_batch = False
        self._io_scheduled = False
        #: Exchanges of our requests still waiting, by (peer, token): a failed delivery
        #: fails its request at once.
        self._waiting: dict[tuple[Any, bytes], Exchange] = {}
        #: Per-request time to live (seconds), by (peer, token), while the request waits.
        self._ttl: dict[tuple[Any, bytes], float] = {}
        self.stats: Counter[str] = Counter()
        #: Sees each uplink first; True takes it (group responses, see .groups).
        self.intercept: Callable[[Address, bytes], bool] | None = None
        self._log = LogThrottle(log, interval=10.0, burst=5)

    # -- what the listener probe and the server look at ------------------------------------------

    @property
    def local_address(self) -> Address:
        return ()  # nothing to probe: there is no socket of ours

    @property
    def port(self) -> int:
        return 0

    def identity_of(self, remote: Address) -> str | None:
        return principal(str(remote[0]))

    # -- uplink --------------------------------------------------------------------------------

    def receive(self, peer: Address, data: bytes) -> None:
        """A packet from the device (an uplink notification's data)."""
        if self.closed:
            return
        if self.intercept is not None and self.intercept(peer, data):
            return
        now = self.clock()
        duplicates = self.layer.stats.duplicates
        self._in_batch = True
        try:
            request = self.layer.receive(data, peer, now)
            if request is not None:
                self.dispatcher.handle(request, now)
        finally:
            self._in_batch = False
        if self.layer.stats.duplicates != duplicates:
            self.stats["uplink_duplicates"] += 1
            self._log.info("duplicate", "duplicate uplink from %s (CoAP message id seen "
                           "before): re-sent or replayed", peer[0])
        self.stats["uplink_packets"] += 1
        self.stats["uplink_bytes"] += len(data)
        self._after_io()

    # -- the message layer's output --------------------------------------------------------------

    def _after_io(self) -> None:
        layer = self.layer
        if layer.outbox:
            self._flush()
        if layer.events:
            self._process_events()
            if layer.outbox:
                self._flush()
        self._wakeup.at(layer.next_deadline())

    def _flush(self) -> None:
        out = self.layer.outbox
        self.layer.outbox = []
        now = self.clock()
        for data, hashable in out:
            peer: Any = hashable
            ttl = None
            if len(data) > 4 and self._ttl:
                tkl = data[0] & 0x0F
                ttl = self._ttl.get((peer, bytes(data[4:4 + tkl])))
            if ttl is None:
                ttl = self.ttl_of(str(peer[0]))
            self.stats["downlink_packets"] += 1
            self.stats["downlink_bytes"] += len(data)
            self.downlink.submit(peer, data, now + ttl)

    def _process_events(self) -> None:
        events = self.layer.events
        self.layer.events = []
        for ev in events:
            if isinstance(ev, ResponseReceived):
                self._deliver(ev.exchange, ev.response, None)
            elif isinstance(ev, ExchangeFailed):
                self._deliver(ev.exchange, None, ev.error)
            elif isinstance(ev, MessageRejected | MessageTimedOut):
                self.dispatcher.observer_lost(ev.peer, ev.token)

    def _deliver(self, ex: Exchange, response: Message | None, error: CoapError | None
                 ) -> None:
        key = (ex.peer, ex.token)
        if ex.done and self._waiting.get(key) is ex:
            del self._waiting[key]
            self._ttl.pop(key, None)
        user = ex.user
        if isinstance(user, asyncio.Future):
            if not user.done():
                if error is not None:
                    user.set_exception(error)
                else:
                    user.set_result(response)
        elif user is not None:
            if error is not None:
                user.on_error(error)
            else:
                user.on_response(response)

    def delivery_failed(self, d: Datagram, reason: str) -> None:
        """The downlink gave ``d`` up: fail the request it carried, if one waits."""
        self.stats[f"downlink_failed_{reason}"] += 1
        self._log.warning(f"failed-{reason}", "NIDD downlink to %s failed: %s", d.peer[0],
                          reason)
        if not d.is_request:
            return
        ex = self._waiting.pop((d.peer, d.token), None)
        if ex is None or ex.done:
            return
        self._ttl.pop((d.peer, d.token), None)
        self.layer.cancel(ex, self.clock())
        self._deliver(ex, None, NiddDeliveryFailed(reason))
        self._after_io()

    def _on_timer(self) -> None:
        self.layer.handle_timers(self.clock())
        self._after_io()

    # -- ServerTransport (the dispatcher's replies) ------------------------------------------------

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
        if not self._in_batch and not self._io_scheduled:
            self._io_scheduled = True
            self.loop.call_soon(self._scheduled_io)

    def _scheduled_io(self) -> None:
        self._io_scheduled = False
        self._after_io()

    # -- requests to devices ----------------------------------------------------------------

    def new_token(self) -> bytes:
        return self.layer.new_token()

    def _prepare(self, request: Message, remote: Address, timeout: float | None
                 ) -> tuple[Address, float]:
        """The request goes NON unless configured CON. With a timeout, the exchange waits
        that long and the data lives 90% of it; without, the data lives the device's time
        to live and the exchange waits that plus a response's way back."""
        if self.closed:
            raise EndpointClosed("endpoint is closed")
        peer = (str(remote[0]), 0)
        if not self.confirmable and request.mtype != NON:
            request.mtype = NON
        if not request.token:
            request.token = self.layer.new_token()
        if timeout is not None:
            # The data must leave room for the answer's way back within the caller's bound.
            self._ttl[(peer, request.token)] = timeout * TTL_SHARE
            return peer, timeout
        ttl = self.ttl_of(peer[0])
        self._ttl[(peer, request.token)] = ttl
        return peer, ttl + self.params.response_timeout

    async def _exchange(self, request: Message, peer: Address, wait: float) -> Message:
        fut: asyncio.Future[Message] = self.loop.create_future()
        ex = self.layer.send_request(request, peer, self.clock(), wait)
        ex.user = fut
        self._waiting[(peer, ex.token)] = ex
        self._after_io()
        try:
            return await fut
        except asyncio.CancelledError:
            self.layer.cancel(ex, self.clock())
            raise
        finally:
            if self._waiting.get((peer, ex.token)) is ex:
                del self._waiting[(peer, ex.token)]
            self._ttl.pop((peer, ex.token), None)

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message:
        peer, wait = self._prepare(request, remote, timeout)
        szx = block_szx_for(self.packet_bits_of(peer[0]), block_szx)
        if len(request.payload) > (1 << (szx + 4)):
            sender = Block1Sender(request, szx)
            while True:
                part = sender.next_request()
                part.mtype = request.mtype
                part.token = self.layer.new_token()
                self._ttl[(peer, part.token)] = self._ttl.get((peer, request.token), wait)
                response = await self._exchange(part, peer, wait)
                if sender.on_response(response):
                    break
        else:
            response = await self._exchange(request, peer, wait)
        block = response.block2
        if block is not None and block.more:
            response = await self.complete_blocks(request, response, peer, timeout)
        return response

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                              timeout: float | None = None) -> Message:
        collector = Block2Collector(request, first)
        while collector.more:
            nxt = collector.next_request()
            nxt.token = b""
            peer, wait = self._prepare(nxt, remote, timeout)
            collector.add(await self._exchange(nxt, peer, wait))
        return collector.result()

    async def observe_with(self, request: Message, remote: Address, sink: ResponseSink
                           ) -> Exchange:
        peer, wait = self._prepare(request, remote, None)
        ex = self.layer.send_request(request, peer, self.clock(), wait)
        ex.user = sink
        self._waiting[(peer, ex.token)] = ex
        self._after_io()
        return ex

    async def resume_observation(self, request: Message, remote: Address, sink: ResponseSink
                                 ) -> Exchange:
        peer = (str(remote[0]), 0)
        ex = self.layer.resume_observation(request, peer)
        ex.user = sink
        return ex

    def forget(self, exchange: Exchange) -> None:
        self._waiting.pop((exchange.peer, exchange.token), None)
        self._ttl.pop((exchange.peer, exchange.token), None)
        self.layer.cancel(exchange, self.clock())
        self._after_io()

    def drop_peer(self, peer: Address) -> None:
        """The device's registration ended: its exchanges end too."""
        self.layer.fail_peer((str(peer[0]), 0), EndpointClosed("registration ended"))
        self._after_io()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.dispatcher.close()
        self._wakeup.cancel()
        self.layer.fail_all(EndpointClosed("endpoint closed"))
        self._process_events()
        self._waiting.clear()
        self._ttl.clear()

    def pending(self) -> int:
        return len(self._waiting)
