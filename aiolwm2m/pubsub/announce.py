"""Announcing the broker to a Resource Directory (CoP-001; draft section 2.3.1, RFC 9176
section 5.3): register the broker (rt=core.ps), its collection and its topics, refresh the
registration before its lifetime runs out, register again when topics come and go, and
remove it when the broker stops.

The registration goes out of the broker's own socket, so the RD learns the broker's
address and port from it (no ``base=`` needed). RFC 9176 changes a registration's links by
registering again with the same endpoint name, which keeps its location.

Older RDs (libcoap's ``coap-rd`` up to at least 4.3.1, built on early RD drafts) answer a
registration update with 4.05 or 5.01, keep entries without a lifetime, create a second
entry for a second registration of the same name, and abort on a DELETE of an entry
(a double free). The announcer asks once, right after registering, whether updates work;
with an RD where they do not, it registers anew when the topics change and never deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import UriError, parse_uri
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.transport.udp import UdpEndpoint

from . import drafts as d
from .events import BrokerEvent, TopicCreated, TopicRemoved
from .rd_discovery import (
    RdTarget,
    discover_multicast,
    discovery_request,
    is_multicast,
    registration_resource,
)

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger(__name__)
_warn = LogThrottle(log, interval=300.0, burst=3)
#: Topic churn is announced at most this often: a thousand topics created in a burst are
#: one re-registration.
CHANGE_DELAY = 0.5
REQUEST_TIMEOUT = 10.0
#: Servers delay multicast answers by up to DEFAULT_LEISURE (5 s, RFC 7252 section 8.2).
MULTICAST_WAIT = 6.0


class RdAnnouncer:
    def __init__(self, broker: Broker, rd: str, *, endpoint_name: str | None = None,
                 lifetime: int = 3600, multicast_interface: str | None = None,
                 retry_delay: float = 5.0, max_retry_delay: float = 300.0) -> None:
        try:
            self.uri = parse_uri(rd)
        except UriError as e:
            raise ValueError(f"--rd: {e}") from None
        if self.uri.scheme != "coap":
            raise ValueError("--rd: the broker announces itself over coap:// only")
        self.broker = broker
        self.endpoint_name = endpoint_name or default_endpoint_name(broker.port)
        self.lifetime = lifetime
        self.multicast_interface = multicast_interface
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        #: The registration resource's location at the RD, once registered.
        self.location: tuple[str, ...] | None = None
        self.target: RdTarget | None = None
        #: "starting", "discovering", "registered", "retrying: <why>", "stopped".
        self.state = "starting"
        self.registrations = 0
        self.refreshes = 0
        #: Whether the RD takes registration updates (None: not asked yet); see above.
        self.updates_supported: bool | None = None
        self.registered = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unlisten = broker.on(self._on_event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._unlisten()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.location is not None and self.target is not None and self.updates_supported:
            with contextlib.suppress(CoapError, OSError, TimeoutError):
                await self._request(Message.request(Code.DELETE, self.location), timeout=3.0)
            self.location = None
        self.state = "stopped"

    def _on_event(self, event: BrokerEvent) -> None:
        if isinstance(event, TopicCreated | TopicRemoved):
            self._changed.set()

    # -- the registration's life ---------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_delay
        while True:
            try:
                await self._discover()
                await self._register()
                delay = self.retry_delay
                await self._keep_alive()
            except (CoapError, OSError, TimeoutError, RdRefused) as e:
                self.registered.clear()
                self.location = None
                self.state = f"retrying: {e}"
                _warn.warning("rd", "announcing the broker to %s failed (%s); again in %.0f s",
                              self.target or self.uri, e, delay)
                await asyncio.sleep(delay)
                delay = min(self.max_retry_delay, delay * 2)

    async def _keep_alive(self) -> None:
        """Refresh before the lifetime ends; register again when the topics changed."""
        while True:
            refresh_in = max(1.0, self.lifetime * 0.75) if self.updates_supported else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), refresh_in)
            if self._changed.is_set():
                await asyncio.sleep(CHANGE_DELAY)
                await self._register()
                continue
            if not await self._refresh():
                await self._register()  # the RD forgot us (say, it restarted)

    async def _refresh(self) -> bool:
        """A registration update (RFC 9176 section 5.3.1); False when the RD no longer
        knows the registration."""
        assert self.location is not None
        reply = await self._request(Message.request(Code.POST, self.location))
        if reply.code == Code.CHANGED:
            self.updates_supported = True
            self.refreshes += 1
            return True
        if reply.code == Code.NOT_FOUND:
            return False
        if (reply.code in (Code.METHOD_NOT_ALLOWED, Code.NOT_IMPLEMENTED)
                and self.updates_supported is None):
            self.updates_supported = False
            log.info("the RD at %s takes no registration updates; the broker registers "
                     "anew when its topics change", self.target)
            return True
        raise RdRefused(f"registration update answered {code_str(reply.code)}")

    async def _discover(self) -> None:
        uri = self.uri
        if uri.path:
            self.target = RdTarget(uri.host, uri.port, uri.path)
            return
        self.state = "discovering"
        if is_multicast(uri.host):
            target = await discover_multicast(uri.host, uri.port, timeout=MULTICAST_WAIT,
                                              interface=self.multicast_interface)
            if target is None:
                raise RdRefused(f"no Resource Directory answered on {uri.host}")
            self.target = target
            return
        self.target = RdTarget(uri.host, uri.port, ())
        reply = await self._request(discovery_request(b"", 0, confirmable=True))
        found = (registration_resource(reply.payload, uri.host, uri.port)
                 if reply.code == Code.CONTENT else None)
        if found is None:
            raise RdRefused(f"{uri.host} names no registration resource (rt={d.RT_BROKER!r} "
                            "needs one with rt=core.rd)")
        self.target = found

    def links(self) -> bytes:
        return ",".join(self.broker.links()).encode()

    async def _register(self) -> None:
        assert self.target is not None
        self._changed.clear()
        request = Message.request(Code.POST, self.target.path,
                                  query=[f"ep={self.endpoint_name}", f"lt={self.lifetime}"],
                                  payload=self.links(), content_format=40)
        reply = await self._request(request)
        if reply.code not in (Code.CREATED, Code.CHANGED):
            raise RdRefused(f"registration answered {code_str(reply.code)}")
        previous = self.location
        if reply.location_path:
            self.location = reply.location_path
        elif self.location is None:
            raise RdRefused("registration answered without a Location-Path")
        self.registrations += 1
        if self.updates_supported is None:
            await self._refresh()  # ask once whether this RD takes updates (see above)
        elif (self.updates_supported and previous is not None
              and previous != self.location):
            # An RD that made a second entry: the first is stale.
            with contextlib.suppress(CoapError, OSError, TimeoutError):
                await self._request(Message.request(Code.DELETE, previous), timeout=3.0)
        self.state = "registered"
        self.registered.set()
        log.info("broker registered at %s as %s (location /%s)", self.target,
                 self.endpoint_name, "/".join(self.location))

    # -- transport ------------------------------------------------------------------------

    def _endpoint(self) -> UdpEndpoint:
        """The broker socket that can reach the RD: its own family first."""
        assert self.target is not None
        want = socket.AF_INET6 if ":" in self.target.host else socket.AF_INET
        endpoints = self.broker.endpoints
        for endpoint in endpoints:
            if endpoint.family == want:
                return endpoint
        return endpoints[0]

    async def _request(self, request: Message, timeout: float = REQUEST_TIMEOUT) -> Message:
        assert self.target is not None
        return await asyncio.wait_for(
            self._endpoint().request(request, (self.target.host, self.target.port)), timeout)

    @property
    def registration_uri(self) -> str | None:
        if self.target is None or self.location is None:
            return None
        return str(RdTarget(self.target.host, self.target.port, self.location))


class RdRefused(Exception):
    """The RD could not be found or refused the broker."""


def default_endpoint_name(port: int) -> str:
    return f"pubsub-{socket.gethostname()}-{port}"[:63]
