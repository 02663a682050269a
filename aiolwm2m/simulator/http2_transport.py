"""Simulated devices over HTTP/2 (``aiolwm2m simulate --server http2://...``).

Each device holds one HTTP/2 connection of its own (the client library's
:class:`~aiolwm2m.http2.client_endpoint.Http2ClientEndpoint`, without a site: the fleet
answers the server's requests itself), opened with its first request. Against an IPv4
loopback server every device connects from its own 127.x.y.z address, so that the
server's per-address connection cap does not see one crowd. The fleet's code is the
same as over CoAP: requests and their responses as CoAP messages, the server's requests
with ``remote = (device index, server address)``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.http2.client_endpoint import Http2ClientEndpoint

from .fleet_transport import FleetHandler
from .limits import uses_shared_sockets

log = logging.getLogger(__name__)


class _Connections:
    """The fleet's view of its devices' sockets (one connection each, made lazily)."""

    def __init__(self) -> None:
        self.sent = self.received = self.send_errors = 0

    def open(self, index: int) -> tuple[Any, ...]:
        return ()

    def close_socket(self, index: int) -> None:
        """Connections close with their device's endpoint."""

    def sendto(self, index: int, data: bytes, address: Any) -> None:
        raise NotImplementedError("HTTP/2 devices send through their connection")

    def close(self) -> None:
        """Nothing shared to close."""


class Http2FleetTransport:
    shared = False

    def __init__(self, handler: FleetHandler, count: int, server_host: str) -> None:
        self.handler = handler
        self.pool = _Connections()
        self.loop = asyncio.get_running_loop()
        self._spread = uses_shared_sockets(server_host)
        self._endpoints: dict[int, Http2ClientEndpoint] = {}
        self._tasks = BackgroundTasks(log, "simulated HTTP/2 request")
        self._pending = 0

    def _endpoint(self, index: int, address: Any) -> Http2ClientEndpoint:
        endpoint = self._endpoints.get(index)
        if endpoint is None:
            local = None
            if self._spread:
                n = index + 1
                local = f"127.{1 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}"
            endpoint = Http2ClientEndpoint(
                str(address[0]), int(address[1]), local_host=local,
                on_request=functools.partial(self._request_from_server, index))
            endpoint.on_observation_lost = functools.partial(self.handler.on_rejected, index)
            self._endpoints[index] = endpoint
        return endpoint

    def _request_from_server(self, index: int, msg: Message) -> None:
        msg.remote = (index, msg.remote)
        self.pool.received += 1
        try:
            self.handler.on_request(index, msg)
        except Exception:
            log.exception("device %d failed on a request", index)

    @property
    def pending_exchanges(self) -> int:
        return self._pending

    def request(self, index: int, message: Message, address: Any, user: Any,
                timeout: float | None = None) -> None:
        endpoint = self._endpoint(index, address)
        self._pending += 1
        self.pool.sent += 1
        self._tasks.spawn(self._exchange(endpoint, message, user, timeout))

    async def _exchange(self, endpoint: Http2ClientEndpoint, message: Message, user: Any,
                        timeout: float | None) -> None:
        try:
            response = await endpoint.request(message, timeout=timeout)
        except CoapError as e:
            self.handler.on_failure(user, e)
            return
        finally:
            self._pending -= 1
        self.handler.on_response(user, response)

    def respond(self, request: Message, response: Message) -> None:
        index, address = request.remote
        endpoint = self._endpoints.get(index)
        if endpoint is not None:
            request.remote = address
            response.remote = address
            endpoint.send_response(request, response)

    def notify(self, index: int, address: Any, notification: Message) -> None:
        endpoint = self._endpoints.get(index)
        if endpoint is not None:
            endpoint.send_notification(None, notification)

    def kick(self) -> None:
        """Requests go out as they are made."""

    def close(self) -> None:
        self._tasks.cancel_all()
        endpoints, self._endpoints = self._endpoints, {}
        for endpoint in endpoints.values():
            self._tasks.spawn(endpoint.close())
