"""Client-initiated (and waiting for server-initiated) bootstrap, for the client glue.

``POST /bs?ep=NAME[&pct=..]`` to the Bootstrap-Server account's URI, then wait for the
Bootstrap-Finish the bootstrap interface reports; a refused Finish (4.06) or no Finish in
``bootstrap_timeout`` is a failure, retried with back-off until it succeeds.

The Bootstrap-Server is reached as its Security instance (the one with the Bootstrap-Server
flag) says: coap://, or coaps:// / coaps+tcp:// authenticated with the bootstrap
credentials, or coap+tcp://. A failed attempt drops an own link (fresh handshake next time);
a link that worked stays open after the bootstrap, so the Bootstrap-Server can start a
server-initiated bootstrap over it later. Waiting for a server-initiated bootstrap
(``server_initiated_wait``) only works over coap://: over DTLS and TCP the Bootstrap-Server
cannot reach a client that has not connected yet.
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
from .backoff import Backoff
from .events import BootstrapFailed, Bootstrapped, BootstrapStarted
from .registration import RegistrationRejected, bootstrap_request, check_response
from .server_link import ServerLink
from .tree import SERVER
from .waiting import event_or_deadline

if TYPE_CHECKING:
    from .client import LwM2MClient

log = logging.getLogger(__name__)


class BootstrapProcedure:
    def __init__(self, client: LwM2MClient) -> None:
        self.client = client
        self.bootstrapping = False
        self.address: Any = None
        self.link: ServerLink | None = None
        self.done = asyncio.Event()
        self.error: str | None = None
        self.lost: str | None = None

    async def until_done(self) -> None:
        """Bootstrap, retrying with back-off until a bootstrap succeeds."""
        client = self.client
        config = client.config
        backoff = Backoff(config.retry, config.rng)
        if config.server_initiated_wait > 0:
            await self.resolve()
            deadline = client.clock.now() + config.server_initiated_wait
            if await event_or_deadline(client.clock, self.done, deadline):
                self.done.clear()
                return
        while True:
            try:
                await self.once()
                return
            except (CoapError, RegistrationRejected, OSError, UriError, SecurityModeError,
                    TimeoutError) as e:
                if self.link is not None and not self.link.shared:
                    await self.close_link()
                delay = backoff.next_delay()
                log.info("bootstrap failed (%s); retry in %.1f s", e, delay)
                client.events.emit(BootstrapFailed(str(e) or type(e).__name__, delay))
                await client.clock.sleep(delay)

    async def resolve(self) -> ServerLink:
        account = self.client.bootstrap_account()
        if account is None:
            raise UriError("no Bootstrap-Server account")
        target = server_target(account)
        link = self.link
        if link is None or link.closed or link.target != target:
            await self.close_link()
            link = self.link = await self.client.open_link(target, self.handle,
                                                           on_lost=self.connection_lost)
        self.address = link.address
        return link

    def handle(self, request: Message) -> RenderResult:
        """A request from the Bootstrap-Server on its own link."""
        return self.client.handle_bootstrap_request(request)

    async def close_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            await self.client.close_link(link)

    def connection_lost(self) -> None:
        """The TCP connection to the Bootstrap-Server ended: a bootstrap in progress fails
        now rather than at ``bootstrap_timeout``."""
        if self.bootstrapping and not self.done.is_set():
            self.lost = "the connection to the bootstrap server ended"
            self.done.set()

    async def once(self) -> None:
        client = self.client
        link = await self.resolve()
        self.done.clear()
        self.error = None
        self.lost = None
        self.bootstrapping = True
        client.events.emit(BootstrapStarted())
        try:
            request = bootstrap_request(client.config.endpoint,
                                        client.config.preferred_content_format)
            response = await client.request(request, link)
            check_response("Bootstrap-Request", response, Code.CHANGED)
            deadline = client.clock.now() + client.config.bootstrap_timeout
            if not await event_or_deadline(client.clock, self.done, deadline):
                raise TimeoutError("no Bootstrap-Finish from the bootstrap server")
            if self.lost is not None:
                raise ConnectionError(self.lost)
            if self.error is not None:
                raise RegistrationRejected("Bootstrap-Finish", Code.NOT_ACCEPTABLE,
                                           self.error)
        finally:
            self.bootstrapping = False
        self.done.clear()

    def refused(self, reason: str) -> None:
        """The bootstrap interface answered Bootstrap-Finish with 4.06."""
        self.error = reason
        self.done.set()

    def finished(self) -> None:
        """The bootstrap interface accepted Bootstrap-Finish."""
        client = self.client
        for srv in client.tree.instances(SERVER):
            srv.store(12, int(client.wall_time()))
        client.events.emit(Bootstrapped())
        self.done.set()
        if not self.bootstrapping:
            # Server-initiated: the new configuration replaces the running sessions.
            client.reconfigure()
