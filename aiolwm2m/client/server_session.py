"""One LwM2M server account at run time: register, keep the registration alive, back off.

The loop (:meth:`ServerSession.run`) registers, then sends an Update before each lifetime
ends or when asked to (object list changed, Lifetime or Binding written, Registration Update
Trigger, waking from queue-mode sleep), re-registers when an Update fails, and after a
failure waits the back-off delay, never less than the policy's minimum. Disable (/1/x/4)
de-registers, drops the connection (DTLS session, TCP connection) and ignores the server
for the Disable Timeout.

The server is reached through a :class:`~.server_link.ServerLink` built from the account's
Security instance (scheme, security mode, credentials); a failed registration drops an own
link so that the next attempt starts with a fresh handshake or connection. Over TCP
(binding T) a connection that ends makes the client connect again at once with an Update,
and register again, with the same back-off, if that fails.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import UriError
from aiolwm2m.transport.site import RenderResult

from .account_security import SecurityModeError, server_target
from .backoff import Backoff, RetryPolicy
from .events import Deregistered, Disabled, Registered, RegistrationFailed, Updated
from .instance import Instance
from .registration import (
    RegistrationParams,
    RegistrationRejected,
    check_response,
    deregister_request,
    location_of,
    object_links,
    register_request,
    update_due,
    update_request,
)
from .server_link import ServerLink
from .tree import SECURITY, SERVER
from .waiting import event_or_deadline

if TYPE_CHECKING:
    from .client import LwM2MClient

log = logging.getLogger(__name__)

# SecurityModeError: the Security instance cannot be used (mode, key material).
_FAILURES = (CoapError, RegistrationRejected, OSError, UriError, SecurityModeError,
             asyncio.TimeoutError)


class ServerSession:
    def __init__(self, client: LwM2MClient, ssid: int) -> None:
        self.client = client
        self.ssid = ssid
        self.location: tuple[str, ...] = ()
        self.registered = False
        self.address: Any = None
        self.link: ServerLink | None = None
        self.updated_at = 0.0
        self.sent_lifetime = 0
        self.sent_binding = ""
        self.links_dirty = False
        self.update_requested = asyncio.Event()
        self.disable_for: float | None = None
        self.disabled_until = 0.0
        self.lock = asyncio.Lock()
        self.backoff = Backoff(self.retry_policy(), client.config.rng)
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "registered" if self.registered else "not registered"
        return f"<ServerSession ssid={self.ssid} {state} {'/'.join(self.location)}>"

    # -- configuration from the objects ----------------------------------------------------

    def server_instance(self) -> Instance | None:
        for inst in self.client.tree.instances(SERVER):
            if inst.get(0) == self.ssid:
                return inst
        return None

    def security_instance(self) -> Instance | None:
        for inst in self.client.tree.instances(SECURITY):
            if not inst.get(1) and inst.get(10) == self.ssid:
                return inst
        return None

    def retry_policy(self) -> RetryPolicy:
        policy = self.client.config.retry
        srv = self.server_instance()
        if srv is None:
            return policy
        count, timer = srv.get(17), srv.get(18)
        if count is None and timer is None:
            return policy
        initial = float(timer) if timer else policy.initial
        return RetryPolicy(initial, policy.factor, max(policy.maximum, initial), policy.jitter,
                           policy.minimum,
                           int(count) if count is not None else policy.attempts_before_fallback)

    def params(self) -> RegistrationParams:
        """Register / Update parameters. ``b`` is the current binding: the configured one
        when it includes the transport in use (U for coap/coaps, T for coap+tcp/coaps+tcp),
        else just that transport's letter."""
        cfg = self.client.config
        srv = self.server_instance()
        lifetime = int(srv.get(1)) if srv is not None and srv.get(1) else cfg.lifetime
        binding = str(srv.get(7)) if srv is not None and srv.get(7) else cfg.binding
        queue = cfg.queue_mode or "Q" in binding
        letters = binding.replace("Q", "") or "U"
        if self.link is not None and self.link.binding not in letters:
            letters = self.link.binding
        return RegistrationParams(cfg.endpoint, lifetime, letters, queue, cfg.lwm2m_version)

    def object_links(self) -> bytes:
        """The Register (and object-list Update) payload, announcing the configured
        content formats."""
        client = self.client
        return object_links(client.tree.object_entries(),
                            client.config.announced_content_formats)

    @property
    def queue_mode(self) -> bool:
        return self.params().queue_mode

    @property
    def mute_send(self) -> bool:
        srv = self.server_instance()
        return bool(srv.get(23)) if srv is not None else False

    async def resolve(self) -> ServerLink:
        """The link to the server its Security instance describes (a new one when the
        instance changed since the last link was opened)."""
        sec = self.security_instance()
        if sec is None:
            raise UriError(f"server {self.ssid} has no Security instance")
        target = server_target(sec)
        link = self.link
        if link is None or link.closed or link.target != target:
            await self.close_link()
            link = self.link = await self.client.open_link(
                target, self.handle, on_lost=self.connection_lost)
        self.address = link.address
        return link

    def handle(self, request: Message) -> RenderResult:
        """A request that arrived on this account's own endpoint."""
        return self.client.handle_session_request(request, self)

    async def close_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await self.client.close_link(link)

    def connection_lost(self) -> None:
        """The TCP connection to the server ended: connect again with an Update."""
        if self.registered and self.disable_for is None:
            self.update_requested.set()

    def _link(self) -> ServerLink:
        if self.link is None or self.link.closed:
            raise UriError(f"server {self.ssid}: no connection")
        return self.link

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        clock = self.client.clock
        while True:
            if self.disabled_until > clock.now():
                await clock.sleep(self.disabled_until - clock.now())
                if self.link is not None and self.link.shared:
                    self.client.endpoint.unmute(self.link.address)
            try:
                await self.register()
            except _FAILURES as e:
                if self.link is not None and not self.link.shared:
                    await self.close_link()  # the next attempt starts afresh
                self.backoff.policy = self.retry_policy()
                delay = self.backoff.next_delay()
                log.info("server %d: registration failed (%s); retry in %.1f s", self.ssid,
                         e, delay)
                self.client.events.emit(RegistrationFailed(self.ssid, str(e), delay,
                                                           self.backoff.failures))
                if self.backoff.exhausted and self.client.can_fall_back(self):
                    self.client.request_bootstrap(f"server {self.ssid} unreachable")
                    return
                await clock.sleep(delay)
                continue
            self.backoff.reset()
            await self.maintain()

    async def maintain(self) -> None:
        """Keep the registration alive until it is lost or the account is disabled."""
        clock = self.client.clock
        mtw = self.client.config.transmission.max_transmit_wait
        while self.registered:
            due = update_due(self.updated_at, self.sent_lifetime, mtw)
            asked = await event_or_deadline(clock, self.update_requested, due)
            if not asked and clock.now() < update_due(self.updated_at, self.sent_lifetime,
                                                      mtw):
                continue  # an Update happened meanwhile (e.g. on waking): wait again
            self.update_requested.clear()
            if self.disable_for is not None:
                await self.disable(self.disable_for)
                return
            try:
                await self.update()
            except _FAILURES as e:
                log.info("server %d: update failed (%s); registering again", self.ssid, e)
                self.registered = False
                return

    # -- the operations ---------------------------------------------------------------------

    async def register(self) -> None:
        async with self.lock:
            client = self.client
            link = await self.resolve()
            params = self.params()
            links = self.object_links()
            response = await client.request(register_request(params, links), link)
            self.location = location_of(response)
            self.registered = True
            self.updated_at = client.clock.now()
            self.sent_lifetime = params.lifetime
            self.sent_binding = params.binding
            self.links_dirty = False
            client.forget_observations(self)
        log.info("registered with server %d at /%s", self.ssid, "/".join(self.location))
        client.events.emit(Registered(self.ssid, self.location))

    async def update(self) -> None:
        async with self.lock:
            client = self.client
            params = self.params()
            lifetime = params.lifetime if params.lifetime != self.sent_lifetime else None
            binding = params.binding if params.binding != self.sent_binding else None
            links = self.object_links() if self.links_dirty else None
            msg = update_request(self.location, lifetime=lifetime, binding=binding,
                                 queue_mode=params.queue_mode, links=links)
            self.links_dirty = False
            response = await client.request(msg, self._link())
            check_response("Update", response, Code.CHANGED)
            self.updated_at = client.clock.now()
            self.sent_lifetime = params.lifetime
            self.sent_binding = params.binding
        client.events.emit(Updated(self.ssid))

    async def deregister(self, timeout: float | None = 10.0) -> None:
        async with self.lock:
            if not self.registered:
                return
            self.registered = False
            try:
                response = await self.client.request(deregister_request(self.location),
                                                      self._link(), timeout=timeout)
                check_response("De-register", response, Code.DELETED)
            except _FAILURES as e:
                log.info("server %d: de-register failed: %s", self.ssid, e)
            self.client.forget_observations(self)
        self.client.events.emit(Deregistered(self.ssid))

    async def disable(self, seconds: float) -> None:
        self.disable_for = None
        await self.deregister()
        self.disabled_until = self.client.clock.now() + seconds
        if self.link is not None:
            if self.link.shared:
                self.client.endpoint.mute(self.link.address)
            else:
                await self.close_link()  # "the underlying network connection ... MUST be
                # disconnected" (Disable, /1/x/4)
        self.client.events.emit(Disabled(self.ssid, seconds))

    def request_update(self, *, links: bool = False) -> None:
        if links:
            self.links_dirty = True
        self.update_requested.set()
