"""CoAP for a whole fleet: one sans-IO message layer shared by every device socket.

The layer's peer key is ``(device index, remote address)``: retransmissions, duplicate
detection, NSTART and message ids work per device and remote exactly as with one endpoint
each, but the state exists only while an exchange is in flight, and there is one timer heap
and one asyncio timer for everyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import (
    Exchange,
    ExchangeFailed,
    MessageLayer,
    MessageRejected,
    MessageTimedOut,
    ResponseReceived,
)
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.transport.wakeup import Wakeup

from .limits import uses_shared_sockets, wildcard_for
from .per_device_sockets import PerDeviceSockets
from .shared_sockets import SharedSockets

log = logging.getLogger(__name__)

Peer = tuple[int, Any]


class FleetHandler(Protocol):
    def on_request(self, index: int, request: Message) -> None: ...

    def on_response(self, user: Any, response: Message) -> None: ...

    def on_failure(self, user: Any, error: CoapError) -> None: ...

    def on_rejected(self, index: int, token: bytes) -> None: ...


class DevicePool(Protocol):
    """Where the devices' datagrams come from and go to (one local address each)."""

    sent: int
    received: int
    send_errors: int

    def open(self, index: int) -> tuple[Any, ...]: ...

    def close_socket(self, index: int) -> None: ...

    def sendto(self, index: int, data: bytes, address: Any) -> None: ...

    def close(self) -> None: ...


#: Makes a DevicePool from the transport's receive and end-of-batch callbacks.
PoolFactory = Callable[[Callable[[int, bytes, Any], None], Callable[[], None]], DevicePool]


class FleetTransport:
    def __init__(self, handler: FleetHandler, count: int, server_host: str,
                 params: TransmissionParameters = DEFAULT_PARAMETERS,
                 pool: PoolFactory | None = None) -> None:
        """``pool`` makes the devices' pool instead of sockets of their own (NIDD: the
        fleet behind one UE-link socket, ``aiolwm2m.simulator.nidd_fleet_link``)."""
        self.handler = handler
        self.params = params
        self.clock = time.monotonic
        self.layer = MessageLayer(params, now=self.clock())
        self.pool: DevicePool
        if pool is not None:
            self.pool = pool(self._datagram, self._after_io)
        elif uses_shared_sockets(server_host):
            self.pool = SharedSockets(self._datagram, self._after_io, count)
        else:
            self.pool = PerDeviceSockets(self._datagram, self._after_io,
                                         wildcard_for(server_host))
        self.shared = pool is not None or isinstance(self.pool, SharedSockets)
        self.loop = asyncio.get_running_loop()
        self._wakeup = Wakeup(self.loop, self.clock, self._on_timer)
        self._in_batch = False

    # -- receive --------------------------------------------------------------------------

    def _datagram(self, index: int, data: bytes, addr: Any) -> None:
        self._in_batch = True
        request = self.layer.receive(data, (index, addr), self.clock())
        if request is not None:
            try:
                self.handler.on_request(index, request)
            except Exception:
                log.exception("device %d failed on a request", index)

    def _after_io(self) -> None:
        self._in_batch = False
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
        send = self.pool.sendto
        for data, peer in out:
            index, address = _split(peer)
            send(index, data, address)
        out.clear()

    def _process_events(self) -> None:
        events = self.layer.events
        self.layer.events = []
        handler = self.handler
        for ev in events:
            if isinstance(ev, ResponseReceived):
                handler.on_response(ev.exchange.user, ev.response)
            elif isinstance(ev, ExchangeFailed):
                handler.on_failure(ev.exchange.user, ev.error)
            elif isinstance(ev, MessageRejected | MessageTimedOut):
                handler.on_rejected(_split(ev.peer)[0], ev.token)

    def _on_timer(self) -> None:
        self.layer.handle_timers(self.clock())
        self._after_io()

    @property
    def pending_exchanges(self) -> int:
        return self.layer.pending_exchanges

    def kick(self) -> None:
        """Push out what the application queued outside a receive batch."""
        if not self._in_batch:
            self._after_io()

    # -- send -----------------------------------------------------------------------------

    def request(self, index: int, message: Message, address: Any, user: Any,
                timeout: float | None = None) -> Exchange:
        ex = self.layer.send_request(message, (index, address), self.clock(), timeout)
        ex.user = user
        self.kick()
        return ex

    def respond(self, request: Message, response: Message) -> None:
        self.layer.respond(request, response, self.clock())
        self.kick()

    def notify(self, index: int, address: Any, notification: Message) -> None:
        self.layer.send_message(notification, (index, address), self.clock())
        self.kick()

    def close(self) -> None:
        self._wakeup.cancel()
        self.pool.close()


def _split(peer: object) -> Peer:
    key: Peer = peer  # type: ignore[assignment]
    return key
