"""An endpoint's registration with a CoRE Resource Directory, kept alive (RFC 9176).

::

    registerer = RdRegisterer("coaps://rd.example", RdRegistration.build(
        "sensor-7", sector="plant-1", endpoint_types="core.rd-ep-sensor",
        lifetime=3600, links='</temp>;rt="temperature";if="core.s"'),
        security=PskCredentials(b"sensor-7", key))
    registerer.events.subscribe(print)
    await registerer.start()             # registers, then refreshes until closed
    await registerer.wait_registered(30)
    ...
    await registerer.close()             # removes the registration (DELETE)

The RD URI may be ``coap://``, ``coaps://`` (DTLS), ``coap+tcp://`` or ``coaps+tcp://``
(TLS). Secure ones take the RD credentials (PSK, RPK or X.509, as
:class:`~aiolwm2m.client.AccountSecurity` or bare credentials), which need not be those
of any LwM2M account. With a path (``coap://rd.example/rd``) that path is the registration
resource; without one it is discovered with ``GET /.well-known/core?rt=core.rd``.
``simple=True`` registers with a simple registration (``POST /.well-known/rd``: the RD
fetches our /.well-known/core, which the registerer serves).

Keeping alive: each refresh (an Update, ``POST {location}``, or a repeated simple
registration) is sent before the lifetime ends, early enough for every retransmission and
spread by a random jitter. An Update answered 4.04 means the RD forgot the registration:
the registerer registers again at once. An RD that does not implement Update (4.05 or
5.01, e.g. libcoap's coap-rd) is refreshed by registering again, which RFC 9176 makes
keep the same registration. Failures back off exponentially with jitter (honouring the
Max-Age of a 5.03), and drop a DTLS session or TCP connection so the next attempt starts
afresh. Changing the links (:meth:`RdRegisterer.set_links`) registers again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Iterable
from typing import Literal

from aiolwm2m.client.account_security import AccountSecurity
from aiolwm2m.client.backoff import Backoff, RetryPolicy
from aiolwm2m.client.clock import Clock, LoopClock
from aiolwm2m.client.server_link import check_credentials
from aiolwm2m.client.waiting import event_or_deadline
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.linkformat import Link
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.security.credentials import Credentials
from aiolwm2m.security.errors import SecurityError
from aiolwm2m.transport.site import Site

from .connection import RdConnection, account_of, rd_target
from .events import (
    RdEvents,
    RdRegistered,
    RdRegistrationFailed,
    RdRegistrationLost,
    RdUnregistered,
    RdUpdated,
)
from .lookup import find_registration, interface_path
from .messages import (
    RT_REGISTRATION,
    RdProtocolError,
    RdRegistration,
    RdRejected,
    check,
    links_of,
    location_of,
    location_text,
    refresh_due,
    register_request,
    remove_request,
    simple_register_request,
    update_request,
)
from .well_known import links_site, site_links

log = logging.getLogger(__name__)

#: What makes an attempt fail (and be retried), as opposed to a programming error.
FAILURES = (CoapError, RdRejected, RdProtocolError, OSError, TimeoutError, SecurityError)
#: Update answers that say the RD has no Update at all: refresh by registering again.
_NO_UPDATE = (Code.METHOD_NOT_ALLOWED, Code.NOT_IMPLEMENTED)
#: Retry schedule by default: sooner than an LwM2M client's (an RD registration is cheap).
DEFAULT_RETRY = RetryPolicy(initial=2.0, factor=2.0, maximum=300.0, jitter=0.5,
                            attempts_before_fallback=0)

State = Literal["idle", "registering", "registered", "closed"]


class RdRegisterer:
    """Registers one endpoint with one RD and keeps the registration alive.

    ``rd_uri``: the RD (see the module docstring); ``registration``: what to register;
    ``security``: RD credentials for a secure URI; ``simple``: use simple registration;
    ``site``: resources this node serves on the endpoint it registers from (its
    /.well-known/core then answers the RD, and its resources are registered when
    ``registration.links`` is empty); ``host``: the local address to bind (default: the
    wildcard of the RD's address family); ``transmission``: CoAP timers;
    ``retry``: the back-off after failures; ``request_timeout``: an overall bound on each
    request; ``jitter``: the fraction of the refresh interval refreshes are spread over;
    ``clock``/``rng``: time and randomness (tests drive them).

    State is in :attr:`state`, :attr:`registered` and :attr:`location`; every change is
    an event on :attr:`events` (see :mod:`.events`). Configuration errors (a bad URI,
    credentials that do not fit it or cannot be loaded) raise ValueError here.
    """

    def __init__(self, rd_uri: str, registration: RdRegistration, *,
                 security: AccountSecurity | Credentials | None = None,
                 simple: bool = False, site: Site | None = None, host: str | None = None,
                 transmission: TransmissionParameters = DEFAULT_PARAMETERS,
                 retry: RetryPolicy = DEFAULT_RETRY, request_timeout: float | None = None,
                 jitter: float = 0.1, clock: Clock | None = None,
                 rng: random.Random | None = None) -> None:
        self.uri = parse_uri(rd_uri)
        if self.uri.query:
            raise ValueError("the RD URI carries no query: registration parameters come "
                             "from the RdRegistration")
        if simple and self.uri.path:
            raise ValueError("a simple registration goes to /.well-known/rd: give the RD "
                             "URI without a path")
        if registration.endpoint is None and not self.uri.secure:
            raise ValueError("an endpoint name (ep) is needed unless the RD can take it "
                             "from the credentials of a coaps:// or coaps+tcp:// connection")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")
        self.security = account_of(security)
        check_credentials(rd_target(self.uri, self.security))
        self.registration = registration
        self.simple = simple
        self.site = site
        self.host = host
        self.transmission = transmission
        self.request_timeout = request_timeout
        self.jitter = jitter
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.rng = rng if rng is not None else random.Random()
        self.backoff = Backoff(retry, self.rng)
        self.events = RdEvents()
        self.state: State = "idle"
        #: The registration resource on the RD (``()``: none known).
        self.location: tuple[str, ...] = ()
        self.registered = False
        #: When the registration was last made or refreshed (clock time) and with which
        #: lifetime: the next refresh is due from these.
        self.refreshed_at = 0.0
        self.sent_lifetime = 0
        self.sent_base: str | None = None
        #: Set once the RD answered an Update with 4.05 or 5.01.
        self.updates_unsupported = False
        self._registration_path: tuple[str, ...] | None = self.uri.path or None
        self._connection: RdConnection | None = None
        self._lock = asyncio.Lock()
        self._refresh_now = asyncio.Event()
        self._reregister = False
        self._registered_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (f"<RdRegisterer {self.registration.endpoint} at {self.uri} {self.state} "
                f"{location_text(self.location) if self.location else ''}>")

    # -- what is registered -----------------------------------------------------------

    def links(self) -> list[Link]:
        """The links registered: the registration's, else the site's resources."""
        if self.registration.links or self.site is None:
            return list(self.registration.links)
        return site_links(self.site)

    def _effective(self) -> RdRegistration:
        if self.registration.links or self.site is None:
            return self.registration
        return dataclasses.replace(self.registration, links=tuple(site_links(self.site)))

    def set_links(self, links: str | bytes | Iterable[Link]) -> None:
        """Register these links instead (a re-registration, sent at once when running)."""
        self.registration = dataclasses.replace(self.registration, links=links_of(links))
        self._reregister = True
        self._refresh_now.set()

    def set_lifetime(self, lifetime: int) -> None:
        """Use this lifetime from the next refresh on (sent at once when running)."""
        self.registration = dataclasses.replace(self.registration, lifetime=lifetime)
        self._refresh_now.set()

    def refresh_soon(self) -> None:
        """Refresh now rather than when due (e.g. after the node's address changed)."""
        self._refresh_now.set()

    # -- the connection ---------------------------------------------------------------

    async def connection(self) -> RdConnection:
        """The endpoint towards the RD, opened on first use."""
        conn = self._connection
        if conn is None or conn.closed:
            site = (self.site if self.site is not None
                    else links_site(self.links, self._from_the_rd))
            conn = self._connection = await RdConnection.open(
                self.uri, self.security, site=site, host=self.host,
                params=self.transmission)
        return conn

    def _from_the_rd(self, request: Message) -> bool:
        """Whether a request to our /.well-known/core may be answered: over DTLS and TCP
        only the RD can reach the endpoint; over NoSec UDP it must come from the RD's
        host (its port may differ from the one we register with)."""
        conn = self._connection
        if conn is None or conn.uri.scheme != "coap":
            return conn is not None
        remote = request.remote
        return isinstance(remote, tuple) and bool(remote) and remote[0] == conn.address[0]

    async def _drop_connection(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            await conn.close()

    async def _request(self, message: Message, timeout: float | None = None) -> Message:
        conn = await self.connection()
        return await conn.request(message, timeout if timeout is not None
                                  else self.request_timeout)

    async def registration_path(self) -> tuple[str, ...]:
        """The registration resource: from the RD URI, or discovered (and remembered)."""
        if self._registration_path is None:
            self._registration_path = await interface_path(
                await self.connection(), RT_REGISTRATION, self.request_timeout)
        return self._registration_path

    # -- one-shot operations ------------------------------------------------------------

    async def register(self) -> str:
        """Register once, now; returns the location (``""`` for a simple registration
        the RD answered without one). Raises :class:`RdRejected` with the RD's code,
        or a transport error."""
        async with self._lock:
            was = self.location
            registration = await self._send_registration()
        text = location_text(self.location) if self.location else ""
        if was and was == self.location:
            log.debug("RD registration %s renewed", text)
        else:
            log.info("registered %s with the RD %s at %s", registration.endpoint, self.uri,
                     text or "(no location)")
        self.events.emit(RdRegistered(text, registration.lifetime, self.simple))
        return text

    async def _send_registration(self) -> RdRegistration:
        """The registration request (simple or not) and its bookkeeping; the caller holds
        the lock."""
        self.state = "registering"
        registration = self._effective()
        try:
            if self.simple:
                response = await self._request(simple_register_request(registration))
                check("simple registration", response, Code.CHANGED, Code.CREATED)
                location = tuple(response.location_path) or self.location
            else:
                path = await self.registration_path()
                response = await self._request(register_request(path, registration))
                location = location_of(response)
        except BaseException:
            if not self.registered:
                self.state = "idle"
            if not self.uri.path and not self.simple:
                self._registration_path = None  # discover again next time
            raise
        self.location = location
        self.registered = True
        self.state = "registered"
        self.refreshed_at = self.clock.now()
        self.sent_lifetime = registration.lifetime
        self.sent_base = registration.base
        self._reregister = False
        self._registered_event.set()
        return registration

    async def update(self) -> None:
        """Refresh once, now: an Update carrying what changed, or for a simple
        registration the simple registration again. Raises :class:`RdRejected` (4.04:
        the RD forgot the registration)."""
        async with self._lock:
            if not self.registered:
                raise RdProtocolError("not registered")
            if self.simple:
                await self._send_registration()
            else:
                registration = self.registration
                lifetime = (registration.lifetime
                            if registration.lifetime != self.sent_lifetime else None)
                base = registration.base if registration.base != self.sent_base else None
                response = await self._request(update_request(
                    self.location, lifetime=lifetime, base=base))
                check("update", response, Code.CHANGED)
                self.refreshed_at = self.clock.now()
                self.sent_lifetime = registration.lifetime
                self.sent_base = registration.base
        self.events.emit(RdUpdated(location_text(self.location) if self.location else "",
                                   self.sent_lifetime))

    async def unregister(self, timeout: float | None = 5.0) -> bool:
        """Remove the registration (``DELETE {location}``); True when the RD confirmed
        with 2.02. A simple registration without a known location is looked up by its
        endpoint name first, where the RD offers lookup."""
        async with self._lock:
            if not self.registered:
                return False
            self.registered = False
            self._registered_event.clear()
            location = self.location
            confirmed = False
            try:
                if not location and self.registration.endpoint is not None:
                    location = await find_registration(
                        await self.connection(), self.registration.endpoint,
                        self.registration.sector, timeout)
                if location:
                    response = await self._request(remove_request(location), timeout)
                    check("removal", response, Code.DELETED)
                    confirmed = True
            except FAILURES as e:
                log.info("RD registration %s not removed: %s",
                         location_text(location) if location else "", e)
            self.location = ()
        self.events.emit(RdUnregistered(location_text(location) if location else "",
                                        confirmed))
        return confirmed

    # -- kept alive -------------------------------------------------------------------

    async def start(self) -> None:
        """Register and keep the registration alive in a task, until :meth:`close`."""
        if self.state == "closed":
            raise RuntimeError("the registerer is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_registered(self, timeout: float | None = None) -> str:
        """Wait until registered; returns the location."""
        async with asyncio.timeout(timeout):
            await self._registered_event.wait()
        return location_text(self.location) if self.location else ""

    async def close(self, *, unregister: bool = True, timeout: float | None = 5.0) -> None:
        """Stop refreshing; remove the registration (unless ``unregister`` is False, when
        it lapses at the end of its lifetime); close the endpoint."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.state == "closed":
            return
        try:
            if unregister and self.registered:
                await self.unregister(timeout)
        finally:
            self.state = "closed"
            self.registered = False
            await self._drop_connection()

    async def __aenter__(self) -> RdRegisterer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.register()
            except FAILURES as e:
                await self._failed(e)
                continue
            self.backoff.reset()
            await self._keep_alive()

    async def _failed(self, error: BaseException) -> None:
        if not isinstance(error, RdRejected):
            await self._drop_connection()  # the next attempt starts a new handshake
        delay = self.backoff.next_delay()
        if isinstance(error, RdRejected) and error.max_age is not None:
            delay = max(delay, min(float(error.max_age), self.backoff.policy.maximum))
        log.info("RD registration at %s failed (%s); retry in %.1f s", self.uri, error, delay)
        self.events.emit(RdRegistrationFailed(str(error), delay, self.backoff.failures))
        await self.clock.sleep(delay)

    async def _keep_alive(self) -> None:
        """Refresh until the registration is lost (then return, to register again)."""
        mtw = self.transmission.max_transmit_wait
        while self.registered:
            due = refresh_due(self.refreshed_at, self.sent_lifetime, mtw, self.rng,
                              self.jitter)
            await event_or_deadline(self.clock, self._refresh_now, due)
            self._refresh_now.clear()
            try:
                if self._reregister or self.updates_unsupported:
                    await self.register()
                else:
                    await self.update()
            except RdRejected as e:
                if e.code in _NO_UPDATE and not self._reregister and not self.simple:
                    log.info("the RD %s does not implement Update (%s): refreshing by "
                             "registering again", self.uri, e)
                    self.updates_unsupported = True
                    self._refresh_now.set()
                    continue
                self._lost(e)
                return
            except FAILURES as e:
                self._lost(e)
                if not isinstance(e, RdProtocolError):
                    await self._drop_connection()
                return

    def _lost(self, error: BaseException) -> None:
        location = location_text(self.location) if self.location else ""
        log.info("RD registration %s lost (%s): registering again", location, error)
        self.registered = False
        self._registered_event.clear()
        self.state = "registering"
        self.events.emit(RdRegistrationLost(location, str(error)))
