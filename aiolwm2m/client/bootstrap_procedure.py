"""Client-initiated (and waiting for server-initiated) bootstrap, for the client glue.

``POST /bs?ep=NAME[&pct=..]`` to the Bootstrap-Server account's URI, then wait for the
Bootstrap-Finish the bootstrap interface reports; a refused Finish (4.06) or no Finish in
``bootstrap_timeout`` is a failure, retried with back-off until it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.uri import UriError, parse_uri

from .backoff import Backoff
from .events import BootstrapFailed, Bootstrapped, BootstrapStarted
from .registration import RegistrationRejected, bootstrap_request, check_response
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
        self.done = asyncio.Event()
        self.error: str | None = None

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
            except (CoapError, RegistrationRejected, OSError, UriError, TimeoutError) as e:
                delay = backoff.next_delay()
                log.info("bootstrap failed (%s); retry in %.1f s", e, delay)
                client.events.emit(BootstrapFailed(str(e) or type(e).__name__, delay))
                await client.clock.sleep(delay)

    async def resolve(self) -> Any:
        account = self.client.bootstrap_account()
        if account is None:
            raise UriError("no Bootstrap-Server account")
        uri = parse_uri(str(account.get(0)))
        if uri.scheme != "coap":
            raise UriError(f"{uri.scheme}:// is not supported by this client's transport")
        self.address = await self.client.endpoint.resolve(uri.host, uri.port)
        return self.address

    async def once(self) -> None:
        client = self.client
        address = await self.resolve()
        self.done.clear()
        self.error = None
        self.bootstrapping = True
        client.events.emit(BootstrapStarted())
        try:
            request = bootstrap_request(client.config.endpoint,
                                        client.config.preferred_content_format)
            response = await client.request(request, address)
            check_response("Bootstrap-Request", response, Code.CHANGED)
            deadline = client.clock.now() + client.config.bootstrap_timeout
            if not await event_or_deadline(client.clock, self.done, deadline):
                raise TimeoutError("no Bootstrap-Finish from the bootstrap server")
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
