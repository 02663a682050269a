"""The LwM2M 1.1 client: asyncio glue around the sans-IO object tree and interfaces.

::

    client = LwM2MClient(ClientConfig("dev-1", bootstrap_uri="coap://bs.example"),
                         objects=[TemperatureInstance(0)])
    async with client:
        await client.wait_registered()
        await client.send(["/3303/0/5700"])

One UDP socket serves every server (bootstrap and DM). Incoming requests are routed by
their source address: the bootstrap server's go to the Bootstrap interface, a registered
server's to the Device Management interface with that server's Short Server ID, anyone
else's get 4.01.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.errors import CoapError, ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import UriError, parse_uri
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.formats import ContentFormat, encode_timestamped
from aiolwm2m.lwm2m.nodes import Node, TimestampedNodes
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.transport.site import RenderResult, Resource, Site

from . import provisioning
from .access_rights import READ, AccessRights, Unauthorized
from .attribute_store import AttributeStore
from .bootstrap_interface import BootstrapInterface, is_bootstrap_account
from .bootstrap_procedure import BootstrapProcedure
from .clock import Clock
from .config import ClientConfig
from .control import DownloadError
from .dm_interface import DeviceManagement
from .endpoint import ClientEndpoint, peer_key
from .events import ClientEvents, Registered
from .instance import Instance
from .notifier import Notifier, split_key
from .objects import AccessControlInstance
from .objects.firmware import CONNECTION_LOST, INVALID_URI, UNSUPPORTED_PROTOCOL
from .observations import ObservationEngine
from .queue_mode import QueueModeRadio
from .registration import check_response, object_links
from .server_session import ServerSession
from .tree import SECURITY, SERVER, ObjectTree

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
        self._tasks: set[asyncio.Future[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._bootstrap_wanted = asyncio.Event()
        self._reconfigure = asyncio.Event()
        self._registered = asyncio.Event()
        self.tree.value_listeners.append(self._value_changed)
        self.tree.structure_listeners.append(self._structure_changed)
        self.tree.control = self
        self.events.subscribe(self._track_registration)

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
        self.tree.spawner = self._spawn
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
        await self._stop_sessions()
        if deregister and self._endpoint is not None:
            self.radio.asleep = False
            self._endpoint.asleep = False
            await asyncio.gather(*(s.deregister(timeout=5.0) for s in sessions
                                   if s.registered), return_exceptions=True)
        for pending in list(self._tasks):
            pending.cancel()
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

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client task failed", exc_info=task.exception())

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

    async def _stop_sessions(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        for s in sessions:
            if s.task is not None:
                s.task.cancel()
        for s in sessions:
            if s.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await s.task

    # -- incoming requests ------------------------------------------------------------------

    def handle_request(self, request: Message) -> RenderResult:
        self.radio.touch()
        peer = request.remote
        key = peer_key(peer)
        bs_address = self.bootstrap.address
        if bs_address is not None and key == peer_key(bs_address) and (
                self.bootstrapping or not self._session_at(key)):
            return self.bootstrap_interface.handle(request)
        session = self._session_at(key)
        if session is None:
            raise Unauthorized(f"{key[0]}:{key[1]} is not one of this client's servers")
        if self.bootstrapping:
            raise ServiceUnavailable("bootstrapping")
        try:
            return self.dm.handle(request, session.ssid, peer, self.clock.now())
        finally:
            # An observation or attributes may have changed: deadlines move.
            self.notifier.poke()

    def _session_at(self, key: tuple[str, int]) -> ServerSession | None:
        for s in self.sessions.values():
            if s.address is not None and peer_key(s.address) == key:
                return s
        return None

    async def request(self, message: Message, address: Any, *,
                      timeout: float | None = None) -> Message:
        """Send a request of the client's own to a server (its radio on first)."""
        self.radio.radio_on()
        self.radio.touch()
        try:
            return await self.endpoint.request(
                message, address, timeout=timeout if timeout is not None
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

    def forget_observations(self, ssid: int) -> None:
        for obs in self.observations.remove_server(ssid):
            if self._endpoint is not None:
                self._endpoint.dispatcher.observers.remove(*split_key(obs))

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
            response = await self.request(msg, session.address)
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
        return self._endpoint.traffic() if self._endpoint is not None else (0, 0, 0, 0)

    async def download(self, uri: str) -> bytes:
        try:
            parsed = parse_uri(uri)
        except UriError as e:
            raise DownloadError(INVALID_URI, str(e)) from None
        if parsed.scheme != "coap":
            raise DownloadError(UNSUPPORTED_PROTOCOL, f"{parsed.scheme}:// not supported")
        request = Message.request(Code.GET, parsed.path, query=parsed.query)
        try:
            address = await self.endpoint.resolve(parsed.host, parsed.port)
            response = await self.request(request, address)
        except (CoapError, OSError) as e:
            raise DownloadError(CONNECTION_LOST, f"{type(e).__name__}: {e}") from None
        if response.code == Code.CONTENT:
            return response.payload
        if response.code == Code.NOT_FOUND:
            raise DownloadError(INVALID_URI, f"{uri}: 4.04")
        raise DownloadError(CONNECTION_LOST, f"{uri}: {code_str(response.code)}")


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


__all__ = ["LwM2MClient", "NotRegistered", "SendMuted"]
