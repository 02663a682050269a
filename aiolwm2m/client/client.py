"""The LwM2M 1.1 client: asyncio glue around the sans-IO object tree and interfaces.

::

    client = LwM2MClient(ClientConfig("dev-1", bootstrap_uri="coap://bs.example"),
                         objects=[TemperatureInstance(0)])
    async with client:
        await client.wait_registered()
        await client.send(["/3303/0/5700"])

Each server is reached as its Security instance says (see :mod:`.server_link`): coap://
servers share one UDP socket, and requests arriving there are routed by source address (the
bootstrap server's to the Bootstrap interface, a registered server's to the Device
Management interface with that server's Short Server ID, anyone else's get 4.01); coaps://,
coap+tcp:// and coaps+tcp:// servers get an endpoint of their own (a DTLS session, a TCP or
TLS connection), and what arrives on it belongs to that server's account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.http2.client_endpoint import Http2ClientEndpoint
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.formats import ContentFormat, encode_timestamped
from aiolwm2m.lwm2m.nodes import Node, TimestampedNodes
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.transport.site import RenderResult, Resource, Site

from . import firmware_download, provisioning
from .access_rights import READ, AccessRights, Unauthorized
from .account_security import ServerTarget
from .attribute_store import AttributeStore
from .bootstrap_interface import BootstrapInterface, is_bootstrap_account
from .bootstrap_procedure import BootstrapProcedure
from .clock import Clock
from .config import ClientConfig
from .dm_interface import DeviceManagement
from .endpoint import ClientEndpoint, GatedEndpoint, peer_key
from .events import ClientEvents, Registered
from .instance import Instance
from .notifier import Notifier, split_key
from .objects import AccessControlInstance
from .observations import ObservationEngine
from .queue_mode import QueueModeRadio
from .registration import check_response, object_links
from .server_link import Route, ServerLink, open_link
from .server_session import ServerSession
from .tree import SECURITY, SERVER, ObjectTree

if TYPE_CHECKING:
    from aiolwm2m.nidd.client_link import NiddLinks

log = logging.getLogger(__name__)

CF = ContentFormat
SEND_FORMATS = frozenset({CF.SENML_JSON, CF.SENML_CBOR})


class SendMuted(Exception):
    """Send is muted for the server (/1/x/23 is true)."""


class NotRegistered(Exception):
    """No registered server to talk to."""


class _ClientResource(Resource):
    """Every request the client receives goes through here (the Site's root prefix)."""

    observable = True

    def __init__(self, client: LwM2MClient) -> None:
        super().__init__()
        self.client = client

    def render(self, request: Message) -> RenderResult:
        return self.client.handle_request(request)


class LwM2MClient:
    def __init__(self, config: ClientConfig, objects: Iterable[Instance] = ()) -> None:
        self.config = config
        self.clock: Clock = config.clock
        self.events = ClientEvents()
        self.tree = ObjectTree()
        provisioning.install(self.tree, config, list(objects))
        self.attributes = AttributeStore()
        self.observations = ObservationEngine(self._effective_attributes,
                                              self.tree.numeric_value)
        self.access = AccessRights(self.tree, AccessControlInstance)
        self.dm = DeviceManagement(self.tree, self.attributes, self.observations, self.access,
                                   self._server_defaults)
        self.bootstrap = BootstrapProcedure(self)
        self.bootstrap_interface = BootstrapInterface(
            self.tree, self.bootstrap.finished, on_refused=self.bootstrap.refused,
            default_format=config.preferred_content_format or CF.TLV)
        self.radio = QueueModeRadio(self)
        self.notifier = Notifier(self)
        self.sessions: dict[int, ServerSession] = {}
        self.started = False
        self._endpoint: ClientEndpoint | None = None
        self._links: set[ServerLink] = set()
        self._closed_traffic = [0, 0, 0, 0]  # of own endpoints already closed
        self._tasks = BackgroundTasks(log, "client task")
        self._supervisor: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._bootstrap_wanted = asyncio.Event()
        self._reconfigure = asyncio.Event()
        self._registered = asyncio.Event()
        self.tree.value_listeners.append(self._value_changed)
        self.tree.structure_listeners.append(self._structure_changed)
        self.tree.control = self
        self.events.subscribe(self._track_registration)
        #: Every account over NIDD when the config says so (``aiolwm2m.nidd.client_link``).
        self.nidd: NiddLinks | None = None
        if config.nidd is not None:
            from aiolwm2m.nidd.client_link import NiddLinks

            self.nidd = NiddLinks(self, config.nidd)

    # -- objects --------------------------------------------------------------------------

    def add_object(self, instance: Instance) -> Instance:
        """Add an instance at run time; registered servers get an Update with the new list."""
        return self.tree.add(instance)

    def remove_object(self, object_id: int, instance_id: int) -> None:
        self.tree.remove(object_id, instance_id)
        self.observations.remove_under(LwM2MPath(object_id, instance_id))

    def object_links(self) -> bytes:
        return object_links(self.tree.object_entries())

    def instance(self, object_id: int, instance_id: int = 0) -> Instance:
        inst = self.tree.get(object_id, instance_id)
        if inst is None:
            raise KeyError(f"/{object_id}/{instance_id}")
        return inst

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        site = Site(well_known_core=False)
        site.add((), _ClientResource(self), prefix=True)
        self._endpoint = await ClientEndpoint.open(cfg.host, cfg.port, site=site,
                                                   params=cfg.transmission)
        self.tree.spawner = self._tasks.spawn
        self.radio.touch()
        self.started = True
        self._supervisor = asyncio.create_task(self._supervise(), name="lwm2m-client")
        self._background = [asyncio.create_task(self.notifier.run(), name="lwm2m-notifier")]
        if cfg.queue_mode or any("Q" in str(s.get(7) or "")
                                 for s in self.tree.instances(SERVER)):
            self._background.append(asyncio.create_task(self.radio.run(),
                                                         name="lwm2m-queue-mode"))

    async def stop(self, *, deregister: bool = True) -> None:
        if not self.started:
            return
        self.started = False
        tasks = [t for t in (self._supervisor, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sessions = list(self.sessions.values())
        await self._stop_sessions(close_links=False)
        if deregister and self._endpoint is not None:
            self.radio.asleep = False
            self.set_radio(asleep=False)
            await asyncio.gather(*(s.deregister(timeout=5.0) for s in sessions
                                   if s.registered), return_exceptions=True)
        self._tasks.cancel_all()
        for s in sessions:
            await s.close_link()
        await self.bootstrap.close_link()
        for link in list(self._links):
            await self.close_link(link)
        if self.nidd is not None:
            await self.nidd.close()
        if self._endpoint is not None:
            await self._endpoint.close()

    async def __aenter__(self) -> LwM2MClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def endpoint(self) -> ClientEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the client is not started")
        return self._endpoint

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def registered(self) -> bool:
        return any(s.registered for s in self.sessions.values())

    @property
    def bootstrapping(self) -> bool:
        return self.bootstrap.bootstrapping

    @property
    def asleep(self) -> bool:
        return self.radio.asleep

    async def wait_registered(self, timeout: float | None = 10.0) -> None:
        """Return once at least one server accepted the registration."""
        await asyncio.wait_for(self._registered.wait(), timeout)

    def _track_registration(self, event: object) -> None:
        if isinstance(event, Registered):
            self._registered.set()
        elif not self.registered:
            self._registered.clear()

    # -- the supervisor: bootstrap, then one session per server ------------------------------

    def dm_accounts(self) -> list[int]:
        """Short Server IDs having both a Security and a Server instance."""
        secured = {int(s.get(10)) for s in self.tree.instances(SECURITY)
                   if not is_bootstrap_account(s) and s.get(10) is not None}
        return sorted(int(s.get(0)) for s in self.tree.instances(SERVER)
                      if s.get(0) is not None and int(s.get(0)) in secured)

    def bootstrap_account(self) -> Instance | None:
        for inst in self.tree.instances(SECURITY):
            if is_bootstrap_account(inst):
                return inst
        return None

    def can_fall_back(self, session: ServerSession) -> bool:
        srv = session.server_instance()
        allowed = srv is None or srv.get(16) is None or bool(srv.get(16))
        return allowed and self.bootstrap_account() is not None

    def request_bootstrap(self, reason: str) -> None:
        log.info("bootstrap requested: %s", reason)
        self._bootstrap_wanted.set()

    def reconfigure(self) -> None:
        """The server accounts changed (server-initiated bootstrap): restart the sessions."""
        self._reconfigure.set()

    async def _supervise(self) -> None:
        if not self.dm_accounts():
            self._bootstrap_wanted.set()
        while True:
            if self._bootstrap_wanted.is_set():
                await self._stop_sessions()
                await self.bootstrap.until_done()
                self._bootstrap_wanted.clear()
            self._reconfigure.clear()
            accounts = self.dm_accounts()
            if not accounts:
                log.error("no LwM2M server account and no bootstrap server to ask")
            for ssid in accounts:
                session = ServerSession(self, ssid)
                self.sessions[ssid] = session
                session.task = asyncio.create_task(session.run(),
                                                   name=f"lwm2m-server-{ssid}")
            await _first(self._bootstrap_wanted, self._reconfigure)
            await self._stop_sessions()

    async def _stop_sessions(self, *, close_links: bool = True) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        for s in sessions:
            if s.task is not None:
                s.task.cancel()
        for s in sessions:
            if s.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await s.task
            if close_links:
                await s.close_link()

    # -- links to servers -------------------------------------------------------------------

    async def open_link(self, target: ServerTarget, route: Route, *,
                        on_lost: Callable[[], None] | None = None) -> ServerLink:
        """A link to ``target`` (see :mod:`.server_link`); requests arriving on an own
        endpoint go to ``route``."""
        cfg = self.config
        if self.nidd is not None and self.nidd.serves(target):
            return await self.nidd.link(target)
        link = await open_link(target, self.endpoint, route, host=cfg.host,
                               params=cfg.transmission, on_lost=on_lost)
        if not link.shared:
            self._links.add(link)
            gated = link.gated
            if gated is not None:
                gated.asleep = self.radio.asleep
            elif isinstance(link.endpoint, Http2ClientEndpoint):
                link.endpoint.asleep = self.radio.asleep
        return link

    async def close_link(self, link: ServerLink) -> None:
        if link in self._links:
            self._links.discard(link)
            gated = link.gated
            if gated is not None:
                for i, n in enumerate(gated.traffic()):
                    self._closed_traffic[i] += n
        await link.close()

    def _gated(self) -> list[GatedEndpoint]:
        out: list[GatedEndpoint] = [self._endpoint] if self._endpoint is not None else []
        out.extend(g for link in self._links if (g := link.gated) is not None)
        if self.nidd is not None and self.nidd.endpoint is not None:
            out.append(self.nidd.endpoint)
        return out

    def _http2(self) -> list[Http2ClientEndpoint]:
        return [link.endpoint for link in self._links
                if isinstance(link.endpoint, Http2ClientEndpoint)]

    def set_radio(self, *, asleep: bool) -> None:
        """Queue mode: switch the radio of every datagram endpoint off or on (HTTP/2: close
        or reopen the downlink stream, which is what tells that server we sleep)."""
        for endpoint in self._gated():
            endpoint.asleep = asleep
        for h2 in self._http2():
            h2.asleep = asleep

    def pending_exchanges(self) -> int:
        """Requests and confirmable messages still waiting on any endpoint."""
        total = 0
        for endpoint in self._gated():
            total += endpoint.gate.pending_exchanges
        for h2 in self._http2():
            total += h2.pending
        return total

    # -- incoming requests ------------------------------------------------------------------

    def handle_request(self, request: Message) -> RenderResult:
        """A request on the shared UDP endpoint: whose it is, its source address says."""
        self.radio.touch()
        peer = request.remote
        key = peer_key(peer)
        bs_link = self.bootstrap.link
        bs_address = bs_link.address if bs_link is not None else self.bootstrap.address
        if bs_address is not None and (bs_link is None or bs_link.shared) and (
                key == peer_key(bs_address)) and (self.bootstrapping
                                                  or not self._session_at(key)):
            return self.bootstrap_interface.handle(request)
        session = self._session_at(key)
        if session is None:
            raise Unauthorized(f"{key[0]}:{key[1]} is not one of this client's servers")
        return self._device_management(request, session)

    def handle_session_request(self, request: Message, session: ServerSession
                               ) -> RenderResult:
        """A request on the own endpoint (DTLS session, TCP connection) of ``session``."""
        self.radio.touch()
        if self.sessions.get(session.ssid) is not session:
            raise Unauthorized(f"server {session.ssid}'s account is not active")
        return self._device_management(request, session)

    def handle_bootstrap_request(self, request: Message) -> RenderResult:
        """A request on the Bootstrap-Server's own endpoint."""
        self.radio.touch()
        return self.bootstrap_interface.handle(request)

    def _device_management(self, request: Message, session: ServerSession) -> RenderResult:
        if self.bootstrapping:
            raise ServiceUnavailable("bootstrapping")
        try:
            return self.dm.handle(request, session.ssid, request.remote, self.clock.now())
        finally:
            # An observation or attributes may have changed: deadlines move.
            self.notifier.poke()

    def _session_at(self, key: tuple[str, int]) -> ServerSession | None:
        """The session reached at ``key`` through the shared UDP endpoint."""
        for s in self.sessions.values():
            link = s.link
            if link is not None and link.shared and peer_key(link.address) == key:
                return s
        return None

    async def request(self, message: Message, link: ServerLink, *,
                      timeout: float | None = None) -> Message:
        """Send a request of the client's own to a server (its radio on first)."""
        self.radio.radio_on()
        self.radio.touch()
        try:
            return await link.request(message, timeout if timeout is not None
                                      else self.config.request_timeout)
        finally:
            self.radio.touch()

    async def wake(self) -> None:
        """Leave queue-mode sleep: radio on, then an Update to each queue-mode server."""
        await self.radio.wake()

    # -- change propagation -------------------------------------------------------------------

    def _value_changed(self, path: LwM2MPath) -> None:
        if self.observations.value_changed(path, self.clock.now()):
            self.notifier.poke()
        if path[0] == SERVER and len(path) >= 3 and path[2] in (1, 7):
            inst = self.tree.get(SERVER, path[1])
            ssid = inst.get(0) if inst is not None else None
            session = self.sessions.get(int(ssid)) if ssid is not None else None
            if session is not None and session.registered:
                session.request_update()

    def _structure_changed(self) -> None:
        for session in self.sessions.values():
            if session.registered:
                session.request_update(links=True)

    def forget_observations(self, session: ServerSession) -> None:
        link = session.link
        for obs in self.observations.remove_server(session.ssid):
            if link is not None:
                link.dispatcher.observers.remove(*split_key(obs))

    def _server_defaults(self, ssid: int) -> NotificationAttributes:
        for srv in self.tree.instances(SERVER):
            if srv.get(0) == ssid:
                return NotificationAttributes(pmin=srv.get(2), pmax=srv.get(3))
        return NotificationAttributes()

    def _effective_attributes(self, ssid: int, path: LwM2MPath) -> NotificationAttributes:
        return self.attributes.effective(ssid, path, self._server_defaults(ssid))

    # -- Information Reporting: Send ---------------------------------------------------------

    async def send(self, paths: Iterable[str | LwM2MPath], *, format: int = CF.SENML_CBOR,
                   ssid: int | None = None, timestamp: bool = True) -> None:
        """Send (``POST /dp``) the current values of ``paths`` to one server (``ssid``) or
        to every registered server whose Mute Send is off."""
        if format not in SEND_FORMATS:
            raise ValueError("Send carries SenML JSON (110) or SenML CBOR (112)")
        wanted = [p if isinstance(p, LwM2MPath) else LwM2MPath.parse(p) for p in paths]
        targets = [s for s in self.sessions.values() if s.registered
                   and (ssid is None or s.ssid == ssid)]
        if not targets:
            raise NotRegistered("no registered server to send to")
        if ssid is not None and any(s.mute_send for s in targets):
            raise SendMuted(f"Send is muted for server {ssid}")
        targets = [s for s in targets if not s.mute_send]
        if not targets:
            raise SendMuted("Send is muted for every registered server")
        for session in targets:
            nodes: dict[LwM2MPath, Node] = {}
            for path in wanted:
                if len(path) >= 2 and not self.access.allowed(session.ssid, READ, path[0],
                                                              path[1]):
                    continue
                nodes[path] = self.tree.read(path)
            group = TimestampedNodes(self.wall_time() if timestamp else None, nodes)
            payload = encode_timestamped(format, [group], self.tree.model)
            if self.asleep:
                await self.wake()
            msg = Message.request(Code.POST, ["dp"], payload=payload, content_format=format)
            link = session.link
            if link is None or link.closed:
                raise NotRegistered(f"server {session.ssid} has no connection")
            response = await self.request(msg, link)
            check_response("Send", response, Code.CHANGED)

    # -- ClientControl ----------------------------------------------------------------------

    def trigger_update(self, ssid: int) -> None:
        session = self.sessions.get(ssid)
        if session is not None:
            session.request_update()

    def disable_server(self, ssid: int, seconds: float) -> None:
        session = self.sessions.get(ssid)
        if session is not None:
            session.disable_for = seconds
            session.update_requested.set()

    def trigger_bootstrap(self) -> None:
        self.request_bootstrap("Bootstrap-Request Trigger executed")

    def wall_time(self) -> float:
        return self.clock.wall()

    def traffic(self) -> tuple[int, int, int, int]:
        """Bytes and datagrams sent and received over UDP and DTLS (TCP not counted)."""
        totals = list(self._closed_traffic)
        for endpoint in self._gated():
            for i, n in enumerate(endpoint.traffic()):
                totals[i] += n
        return totals[0], totals[1], totals[2], totals[3]

    async def download(self, uri: str, max_size: int) -> bytes:
        """Pull a firmware image (see :mod:`.firmware_download`)."""
        return await firmware_download.download(self, uri, max_size)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


__all__ = ["LwM2MClient", "NotRegistered", "SendMuted"]
