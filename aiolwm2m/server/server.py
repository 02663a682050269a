"""The LwM2M server facade: transports, stores, registrations, requests, events."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError, CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.gateway.directory import EndDeviceDirectory
from aiolwm2m.gateway.end_device_sync import EndDeviceSync
from aiolwm2m.gateway.names import EndDeviceName
from aiolwm2m.history.recorder import ValueRecorder
from aiolwm2m.history.selection import open_value_store
from aiolwm2m.history.store import Retention, ValueStore
from aiolwm2m.http2.server_endpoint import Http2Endpoint
from aiolwm2m.lwm2m.attributes import AttributeUpdate, parse_write_attributes
from aiolwm2m.lwm2m.coap_mapping import DeviceContext, decode_response, encode_request
from aiolwm2m.lwm2m.errors import InvalidPath, LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat, decode_timestamped
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.node_builder import build_node
from aiolwm2m.lwm2m.operations import (
    CompositeResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DiscoverRequest,
    DiscoverResponse,
    ExecuteRequest,
    ObserveCompositeRequest,
    ObserveRequest,
    ObserveResponse,
    Operation,
    ReadCompositeRequest,
    ReadRequest,
    ReadResponse,
    Response,
    WriteAttributesRequest,
    WriteCompositeRequest,
    WriteRequest,
)
from aiolwm2m.lwm2m.path import ROOT, LwM2MPath
from aiolwm2m.lwm2m.prefixed_path import parse_prefixed
from aiolwm2m.rd.service import ResourceDirectory
from aiolwm2m.security.config import ServerCredentials
from aiolwm2m.store.interfaces import Commit, Stores, StoreWriter
from aiolwm2m.store.rd_policy_store import open_rd_policy_store
from aiolwm2m.store.rd_sqlite import open_rd_store
from aiolwm2m.store.records import QueuedRequest, Registration
from aiolwm2m.store.redis_records import redis_stores_of
from aiolwm2m.store.selection import open_stores, store_writer
from aiolwm2m.store.sqlite import SQLiteStores
from aiolwm2m.store.sqlite_writer import WRITER_OK
from aiolwm2m.transport.dtls import DtlsEndpoint
from aiolwm2m.transport.interface import Endpoint
from aiolwm2m.transport.listener_probe import check_listeners
from aiolwm2m.transport.site import HeldResponse, RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsServerSecurity
from aiolwm2m.transport.udp import UdpEndpoint

if TYPE_CHECKING:
    from aiolwm2m.groups.service import GroupService

from .config import ServerConfig
from .deadlines import Deadlines
from .errors import DeviceSleeping, NotRegistered, RequestFailed
from .events import (
    Deregistered,
    Event,
    EventBus,
    Expired,
    Registered,
    SendReceived,
    Updated,
)
from .observations import ObservationManager, ObservingTransport
from .queue_mode import QueueMode
from .refusals import Refusals
from .registration_params import RegistrationError
from .registry import Authorizer, Origin, Registry, describe_peer
from .resources import install_interfaces
from .security_binding import SecurityAuthorizer, StoreCredentialLookup
from .unknown_resources import UnknownResourceLog

log = logging.getLogger(__name__)

PathLike = str | LwM2MPath


class ClusterHooks(Protocol):
    """What the server asks of its node when it is one of several (``aiolwm2m.cluster``)."""

    #: Where this node's REST API listens (set by whoever serves it; the others see it).
    http_url: str | None

    async def adopt_for_device(self, registration_id: str, origin: Origin,
                               query: Sequence[str]) -> None:
        """Take over the device of a registration another node holds, when this request
        (an Update or De-register) may act on it."""

    async def stop(self) -> None: ...
R = TypeVar("R", bound=Response)
_SEND_FORMATS = frozenset({ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR})


def _path(p: PathLike) -> LwM2MPath:
    return p if isinstance(p, LwM2MPath) else LwM2MPath.parse(p)


def _target(endpoint: str, p: PathLike) -> tuple[str, LwM2MPath]:
    """The endpoint and path a request goes to: ``("gw", "/dev1/3303/0")`` is end device
    ``dev1`` behind gateway ``gw`` (the Gateway TS's prefixed path), path ``/3303/0``."""
    if isinstance(p, LwM2MPath):
        return endpoint, p
    try:
        return endpoint, LwM2MPath.parse(p)
    except InvalidPath:
        prefixed = parse_prefixed(p)
        if prefixed.prefix is None or isinstance(endpoint, EndDeviceName):
            raise
        return EndDeviceName(endpoint, prefixed.prefix), prefixed.path


def _targets(endpoint: str, paths: Iterable[PathLike]) -> tuple[str, list[LwM2MPath]]:
    """``_target`` of several paths, which must all name the same device."""
    out: list[LwM2MPath] = []
    chosen: str | None = None
    for p in paths:
        target, path = _target(endpoint, p)
        if chosen is not None and target != chosen:
            raise ValueError("a composite operation names the paths of one device (the "
                             "gateway or one of its end devices)")
        chosen = target
        out.append(path)
    return (chosen if chosen is not None else endpoint), out


class LwM2MServer:
    """An LwM2M 1.1 server.

    >>> server = LwM2MServer(ServerConfig(port=5683))
    >>> await server.start()
    >>> await server.read("device-1", "/3/0/0")
    """

    def __init__(self, config: ServerConfig | None = None, *, stores: Stores | None = None,
                 model: ModelRegistry | None = None, authorizer: Authorizer | None = None
                 ) -> None:
        self.config = config or ServerConfig()
        self.model = model or ModelRegistry.with_core_objects()
        for d in self.config.model_dirs:
            self.model.load_directory(d)
        self._stores = stores
        self._authorizer = authorizer
        self.events = EventBus()
        #: Refused requests by reason; each is also logged and emitted as a Refused event.
        self.refusals = Refusals(self.events.emit)
        #: Resources clients sent that the model lacks for the version they announced.
        self.unknown_resources = UnknownResourceLog()
        self.transports: dict[str, Endpoint] = {}
        self._timer_task: asyncio.Task[None] | None = None
        #: The stores' writer (SQLite's writer process, the Redis pipeline; None for the
        #: memory stores): its state and restarts are reported by the health endpoint and
        #: the metrics, and while it is not "ok" registrations get 5.03.
        self.store_writer: StoreWriter | None = None
        #: The Resource Directory (``aiolwm2m.rd``), None with ``ServerConfig.rd`` off.
        self.rd: ResourceDirectory | None = None
        #: NIDD through a SCEF (``aiolwm2m.nidd.service.NiddService``), None without
        #: ``ServerConfig.scef_url``.
        self.nidd: Any = None
        # Imported here: the groups service imports the server's modules.
        from aiolwm2m.groups.service import GroupService

        #: Device groups and group operations (``aiolwm2m.groups``): members(name) and
        #: resolve(name) for other services, read/write/execute/... fanned out.
        self.groups: GroupService = GroupService(self)
        self.started = False
        #: Last values and history of every resource (``aiolwm2m.history``), fed by the
        #: recorder from responses, notifications and Sends; None with values_store "off".
        self.values: ValueStore | None = None
        self.value_recorder: ValueRecorder | None = None
        #: Called after every request sent to a client: (operation, response or None,
        #: seconds, exception or None); the metrics hang here.
        #: Resources served under a path on every CoAP listener besides the LwM2M
        #: interfaces (see add_listener_resource), by path.
        self._listener_resources: dict[str, Callable[[str, Any], Resource]] = {}
        self._sites: dict[str, Site] = {}
        self.request_hooks: list[Callable[[Operation, Response | None, float,
                                           BaseException | None], None]] = []
        #: This node's part of several (``aiolwm2m.cluster.node.ClusterNode``) when
        #: ``ServerConfig.node_id`` is set, else None.
        self.cluster: ClusterHooks | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        stores: Stores
        if self._stores is not None:
            stores = self._stores
        else:  # StoreOpenError (one line) when a Redis store cannot be reached
            stores = await open_stores(cfg.store, cfg.database,
                                       synchronous=cfg.sqlite_synchronous, node=cfg.node_id,
                                       lease_grace=cfg.cluster.lease_grace)
        self._stores = stores
        self.store_writer = store_writer(stores)
        self.registry = Registry(stores.registrations, cfg, self.model,
                                 self._authorizer or SecurityAuthorizer(stores.security))
        self.queue = QueueMode(stores.queue, cfg, self.events.emit, self._send_now)
        self.observations = ObservationManager(stores.observations, self.events.emit,
                                               self._registration_by_id, self.registry.context,
                                               self.queue.woke)
        #: End devices behind gateways (``aiolwm2m.gateway``), kept from their ``/25``.
        self.end_devices = EndDeviceDirectory(self.model, self.registry.end_device_contexts)
        self.gateways = EndDeviceSync(self, self.end_devices)
        self.queue.resolve = self._registration_by_id
        await self.queue.load()
        for reg in await self.registry.load():
            await stores.observations.remove_for_registration(reg.id)
            self.events.emit(Expired(reg))
        if cfg.rd:
            self.rd = ResourceDirectory(
                await open_rd_store(stores), Deadlines(), limits=cfg.rd_limits,
                clock=cfg.clock, refusals=self.refusals, lwm2m=self.registry,
                security=stores.security, policy_store=await open_rd_policy_store(stores),
                writer=self.store_writer,
                subscribe_lwm2m=self.events.subscribe)
            await self.rd.load()
            await self.rd.load_policy(cfg.rd_policy)
        await self.groups.open(stores)
        # "auto" follows the stores in use (they may have been given), SQLite beside them.
        beside = stores.writer.path.parent if isinstance(stores, SQLiteStores) else None
        retention = Retention(max_age=cfg.values_max_age, max_samples=cfg.values_max_samples)
        redis = redis_stores_of(stores)
        if redis is not None and cfg.values_store == "auto":
            # Beside Redis stores, in the same Redis (over a connection of its own).
            from aiolwm2m.history.store_redis import RedisValueStore

            self.values = await RedisValueStore.open(redis.target, retention=retention,
                                                     clock=cfg.clock)
            self.values.start()
        else:
            self.values = await open_value_store(
                cfg.values_store, "memory" if beside is None else "sqlite",
                beside or cfg.data_dir, retention, cfg.clock)
        if self.values is not None:
            self.value_recorder = ValueRecorder(self.values, cfg.clock, cfg.values_max_value_bytes)
            self.value_recorder.attach(self.events.subscribe)
        await self.add_udp_transport("udp", cfg.host, cfg.port)
        if cfg.coaps_port is not None:
            await self.add_dtls_transport("dtls", cfg.host, cfg.coaps_port)
        if cfg.tcp_port is not None:
            await self.add_tcp_transport("tcp", cfg.host, cfg.tcp_port)
        if cfg.tls_port is not None:
            await self.add_tcp_transport("tls", cfg.host, cfg.tls_port, tls=True)
        if cfg.http2_port is not None:
            await self.add_http2_transport("http2", cfg.host, cfg.http2_port)
        if cfg.scef_url is not None:
            # Imported here: the NIDD transport (T8 over httpx) loads only when it is used.
            from aiolwm2m.nidd.service import NiddService

            self.nidd = await NiddService.start_for(self)
        if cfg.check_listeners:
            # A bound port is not a working listener: ask each one over loopback.
            await check_listeners(dict(self.transports))
        transports: dict[str, ObservingTransport] = dict(self.transports)
        resumed = await self.observations.resume(transports)
        self.gateways.resume(self.registry.by_id.values())
        if self.registry.by_id:
            log.info("resumed %d registrations and %d observations", len(self.registry.by_id),
                     resumed)
        if cfg.node_id is not None:
            # Imported here: the cluster's modules use the server's.
            from aiolwm2m.cluster.node import ClusterNode

            self.cluster = await ClusterNode.start_for(self)
        if cfg.run_timers:
            self._timer_task = asyncio.create_task(self._run_timers())
        self.started = True

    async def add_udp_transport(self, name: str, host: str, port: int) -> UdpEndpoint:
        site = Site()
        endpoint = await UdpEndpoint.create(host, port, site=site,
                                            params=self.config.transmission)
        self._budget_reassembly(name, endpoint)
        install_interfaces(self, site, name, endpoint)
        self._serve_listener_resources(name, site, endpoint)
        self.transports[name] = endpoint
        return endpoint

    async def add_dtls_transport(self, name: str, host: str, port: int) -> DtlsEndpoint:
        cfg = self.config
        credentials = ServerCredentials(StoreCredentialLookup(self.stores.security), psk=True,
                                        rpk=cfg.dtls_rpk, x509=cfg.dtls_x509)
        site = Site()
        endpoint = await DtlsEndpoint.create(host, port, site=site, params=cfg.transmission,
                                             server_credentials=credentials,
                                             dtls_config=cfg.dtls_limits)
        assert isinstance(endpoint, DtlsEndpoint)
        self._budget_reassembly(name, endpoint)
        endpoint.on_handshake_failure = functools.partial(self._dtls_refused, name)
        install_interfaces(self, site, name, endpoint)
        self._serve_listener_resources(name, site, endpoint)
        self.transports[name] = endpoint
        return endpoint

    def _budget_reassembly(self, name: str, endpoint: UdpEndpoint) -> None:
        """Block1 uploads get the configured budgets; registered or authenticated peers the
        larger per-peer one (asked once per upload, not per request)."""
        block1 = endpoint.dispatcher.block1
        block1.limits = self.config.reassembly
        block1.is_trusted = functools.partial(self._trusted_peer, name, endpoint)

    def _trusted_peer(self, name: str, endpoint: UdpEndpoint, peer: Any) -> bool:
        if endpoint.identity_of(peer) is not None:
            return True
        address = peer if len(peer) == 2 else (peer[0], peer[1])
        return self.registry.id_for_address(name, address) is not None

    def _dtls_refused(self, transport: str, peer: Any, identity: str | None, reason: str,
                      detail: str) -> None:
        self.refusals.refused(transport=transport, reason=reason, peer=f"{peer[0]}:{peer[1]}",
                              detail=f"{identity or 'no identity offered'}: {detail}")

    async def add_tcp_transport(self, name: str, host: str, port: int, *, tls: bool = False
                                ) -> TcpEndpoint:
        """CoAP over TCP (RFC 8323), or over TLS with ``tls=True``: devices register with
        binding T and are reached over their own connection."""
        cfg = self.config
        security = None
        if tls:
            security = TlsServerSecurity(ServerCredentials(
                StoreCredentialLookup(self.stores.security), psk=True, rpk=cfg.dtls_rpk,
                x509=cfg.dtls_x509))
        site = Site()
        streams = (cfg.tcp_port is not None) + (cfg.tls_port is not None)
        endpoint = await TcpEndpoint.create(
            host, port, site=site, dial=False, tls_server=security, params=cfg.tcp_parameters,
            limits=cfg.tcp_limits.fit_descriptors(max(1, streams)),
            keep_idle=functools.partial(self._carries_registration, name),
            on_refused=functools.partial(self._connection_refused, name))
        install_interfaces(self, site, name, endpoint)
        self._serve_listener_resources(name, site, endpoint)
        self.transports[name] = endpoint
        return endpoint

    async def add_http2_transport(self, name: str, host: str, port: int, *,
                                  tls: bool | None = None) -> Http2Endpoint:
        """LwM2M over HTTP/2 (the project's binding H, ``aiolwm2m.http2``): h2c with prior
        knowledge, or TLS with ALPN h2 when the server has an X.509 certificate (or
        ``tls`` says so). Devices open a downlink stream for the server's requests."""
        # Imported here: the binding uses the server's modules (events, registry, resources).
        from aiolwm2m.http2.server_binding import open_http2_transport

        endpoint = await open_http2_transport(self, name, host, port, tls=tls)
        self.transports[name] = endpoint
        return endpoint

    def _carries_registration(self, transport: str, peer: Any) -> bool:
        """Registered devices may stay silent on their connection for their lifetime."""
        return self.registry.id_for_address(transport, peer) is not None

    def _connection_refused(self, transport: str, reason: str, peer: Any) -> None:
        self.refusals.refused(transport=transport, reason=reason, peer=f"{peer[0]}:{peer[1]}",
                              detail="connection closed at once: the cap is reached")

    def add_listener_resource(self, path: str, factory: Callable[[str, Any], Resource]
                              ) -> None:
        """Serve ``factory(transport name, endpoint)`` under ``path`` (and below it) on
        every CoAP listener, running or added later (the firmware service's ``/fw``)."""
        self._listener_resources[path] = factory
        for name, site in self._sites.items():
            endpoint = self.transports.get(name)
            if endpoint is not None:
                site.add(path, factory(name, endpoint), prefix=True)

    def remove_listener_resource(self, path: str) -> None:
        if self._listener_resources.pop(path, None) is not None:
            for site in self._sites.values():
                site.remove(path)

    def _serve_listener_resources(self, name: str, site: Site, endpoint: Any) -> None:
        self._sites[name] = site
        for path, factory in self._listener_resources.items():
            site.add(path, factory(name, endpoint), prefix=True)

    def port_of(self, transport: str) -> int:
        return self.transports[transport].port

    async def stop(self) -> None:
        if self.cluster is not None:
            await self.cluster.stop()
            self.cluster = None
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self.started:
            self.queue.close()
            self.observations.close()
            self.gateways.close()
        self.groups.close()
        if self.rd is not None:
            self.rd.close()
        if self.nidd is not None:
            await self.nidd.close()
            self.nidd = None
        for endpoint in self.transports.values():
            await endpoint.close()
        self.transports.clear()
        if self.value_recorder is not None:
            await self.value_recorder.close()  # and the values store, writing what is pending
            self.value_recorder = None
        if self._stores is not None:
            await self._stores.close()
        self.started = False

    async def __aenter__(self) -> LwM2MServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self.transports["udp"].port

    @property
    def udp(self) -> UdpEndpoint:
        endpoint = self.transports["udp"]
        assert isinstance(endpoint, UdpEndpoint)
        return endpoint

    @property
    def stores(self) -> Stores:
        assert self._stores is not None, "start() the server first"
        return self._stores

    # -- timers ---------------------------------------------------------------------------

    async def _run_timers(self) -> None:
        purge_every = 60.0
        since_purge = 0.0
        while True:
            try:
                await self.tick()
                since_purge += 1.0
                if since_purge >= purge_every:
                    since_purge = 0.0
                    await self.queue.purge()
            except Exception:
                log.exception("server timers failed")
            await asyncio.sleep(self._next_tick_delay())

    def _next_tick_delay(self) -> float:
        now = self.config.clock()
        candidates = [d for d in (self.registry.expiry.next_deadline(),
                                  self.queue.awake.next_deadline(),
                                  self.rd.next_deadline() if self.rd is not None else None)
                      if d is not None]
        if not candidates:
            return 1.0
        return min(1.0, max(0.01, min(candidates) - now))

    async def tick(self) -> None:
        """Expire lifetimes, put idle queue-mode clients to sleep, expire queued requests."""
        for reg in await self.registry.expire_due():
            if log.isEnabledFor(logging.INFO):
                _log_registration("expired", reg, None)
            await self._ended(reg, "expired")
            self.events.emit(Expired(reg))
        self.queue.sleep_due()
        await self.queue.expire_due()
        if self.rd is not None:
            await self.rd.expire_due()

    # -- registration interface (called by the /rd and /dp resources) ----------------------

    # Register and Update answer without a coroutine: the reply is held (not a handler
    # suspended) until the registration is durable, and the events follow the commit, so
    # no listener hears of a registration a crash could still lose.

    def _register(self, request: Message, origin: Origin) -> RenderResult:
        writer = self.store_writer
        if writer is not None and writer.state != WRITER_OK:
            return self._store_unavailable(request, origin, writer)
        try:
            reg, replaced, commit = self.registry.register(
                request.uri_query, request.payload, request.content_format, origin)
        except RegistrationError as e:
            raise self._refused(e, origin) from None
        response = request.response(Code.CREATED)
        response.location_path = ("rd", reg.id)
        if replaced is not None:
            return self._register_replacing(reg, replaced, commit, response)
        if commit is None:
            self._registered(reg, None)
            return response
        return HeldResponse(response, commit, functools.partial(self._registered, reg, None),
                            functools.partial(self.registry.undo, reg, None))

    async def _register_replacing(self, reg: Registration, replaced: Registration,
                                  commit: Commit, response: Message) -> Message:
        await self._ended(replaced, "replaced by a new registration")
        if commit is not None:
            try:
                await commit
            except BaseException:
                self.registry.undo(reg, None)
                raise
        self._registered(reg, replaced)
        return response

    def _registered(self, reg: Registration, replaced: Registration | None) -> None:
        if log.isEnabledFor(logging.INFO):
            _log_registration("registered", reg, replaced)
        if self.events.watched:
            self.events.emit(Registered(reg, replaced))
        if self.registry.by_id.get(reg.id) is reg:  # not replaced while it committed
            self.queue.woke(reg)
            self.gateways.registered(reg)  # a gateway: its /25 is read

    def _update(self, registration_id: str, request: Message, origin: Origin) -> RenderResult:
        cluster = self.cluster
        if cluster is not None and registration_id not in self.registry.by_id:
            return self._update_adopting(cluster, registration_id, request, origin)
        return self._update_here(registration_id, request, origin)

    async def _update_adopting(self, cluster: ClusterHooks, registration_id: str,
                               request: Message, origin: Origin) -> Message | HeldResponse:
        """An Update for a registration another node held (or this node before a restart):
        the device is taken over when it may act on it, then updated as any other."""
        await cluster.adopt_for_device(registration_id, origin, request.uri_query)
        result = self._update_here(registration_id, request, origin)
        return result if isinstance(result, Message | HeldResponse) else await result

    def _update_here(self, registration_id: str, request: Message, origin: Origin
                     ) -> RenderResult:
        writer = self.store_writer
        if writer is not None and writer.state != WRITER_OK:
            return self._store_unavailable(request, origin, writer)
        try:
            reg, previous, commit = self.registry.update(
                registration_id, request.uri_query, request.payload, request.content_format,
                origin)
        except RegistrationError as e:
            raise self._refused(e, origin) from None
        response = request.response(Code.CHANGED)
        if commit is None:
            self._updated(reg, previous)
            return response
        return HeldResponse(response, commit, functools.partial(self._updated, reg, previous),
                            functools.partial(self.registry.undo, reg, previous))

    def _updated(self, reg: Registration, previous: Registration) -> None:
        # DEBUG, not INFO: every client updates every lifetime or so (a fleet of 100,000
        # with lt=300 is 300+ a second, forever), which would bury everything else.
        if log.isEnabledFor(logging.DEBUG):
            _log_registration("updated", reg, None)
        if self.events.watched:
            self.events.emit(Updated(reg, previous))
        if self.registry.by_id.get(reg.id) is reg:  # not updated again or removed meanwhile
            if reg.address != previous.address and self.observations.active:
                self.observations.readdress(reg)
            self.queue.woke(reg)
            self.gateways.updated(reg, previous)

    async def _deregister(self, registration_id: str, request: Message, origin: Origin
                          ) -> Message:
        cluster = self.cluster
        if cluster is not None and registration_id not in self.registry.by_id:
            await cluster.adopt_for_device(registration_id, origin, ())
        writer = self.store_writer
        if writer is not None and writer.state != WRITER_OK:
            return self._store_unavailable(request, origin, writer)
        try:
            reg = await self.registry.deregister(registration_id, origin)
        except RegistrationError as e:
            raise self._refused(e, origin) from None
        if log.isEnabledFor(logging.INFO):
            _log_registration("deregistered", reg, None)
        await self._ended(reg, "deregistered")
        self.events.emit(Deregistered(reg))
        return request.response(Code.DELETED)

    def _store_unavailable(self, request: Message, origin: Origin, writer: StoreWriter
                           ) -> Message:
        """5.03 with Max-Age while the store's writer restarts (or Redis is unreachable):
        the client retries when it is back instead of waiting on a write that cannot
        commit yet."""
        self.refusals.refused(transport=origin.transport, reason="store-unavailable",
                              detail=writer.last_error or "", peer=describe_peer(origin))
        response = request.response(Code.SERVICE_UNAVAILABLE, b"store unavailable", 0)
        # Until the next attempt, plus a second for the writer to take writes again.
        response.max_age = int(writer.retry_after()) + 1
        return response

    def _refused(self, e: RegistrationError, origin: Origin) -> CoapRequestError:
        """Count and report a refused registration request; what the peer gets back."""
        self.refusals.refused(transport=origin.transport, reason=e.reason,
                              endpoint=e.endpoint, detail=e.detail,
                              peer=describe_peer(origin))
        return CoapRequestError(e.message, e.code)

    async def _ended(self, reg: Registration, reason: str) -> None:
        self.queue.forget(reg)
        await self.observations.drop_registration(reg, reason)
        if reg.id in self.end_devices.gateways:  # its end devices end with it
            await self.gateways.ended(reg, reason)

    async def _send_received(self, request: Message, origin: Origin) -> Message:
        rid = self.registry.id_for_address(origin.transport, origin.address)
        reg = self._registration_by_id(rid) if rid is not None else None
        if reg is None:
            raise self._refused(RegistrationError(
                Code.NOT_FOUND, "Send from a client that is not registered",
                reason="unknown-registration", detail="Send from an unregistered address"),
                origin) from None
        if reg.identity is not None and reg.identity != origin.identity:
            raise self._refused(RegistrationError(
                Code.FORBIDDEN, "forbidden", reason="wrong-identity", endpoint=reg.endpoint,
                detail=f"Send to registration {reg.id} bound to {reg.identity}"),
                origin) from None
        fmt = request.content_format
        if fmt not in _SEND_FORMATS:
            raise self._refused(RegistrationError(
                Code.UNSUPPORTED_CONTENT_FORMAT,
                f"Send takes SenML JSON (110) or SenML CBOR (112), not {fmt}",
                endpoint=reg.endpoint), origin) from None
        try:
            values = decode_timestamped(fmt, request.payload, ROOT,
                                        self.registry.context(reg).model)
        except LwM2MError as e:
            raise self._refused(RegistrationError(
                Code.BAD_REQUEST, f"bad Send payload: {e}", endpoint=reg.endpoint),
                origin) from None
        self.events.emit(SendReceived(reg, tuple(values)))
        self.queue.woke(reg)
        return request.response(Code.CHANGED)

    # -- registrations --------------------------------------------------------------------

    @property
    def registrations(self) -> Mapping[str, Registration]:
        """Current registrations by endpoint name (a read-only live view)."""
        return MappingProxyType(self.registry.by_endpoint)

    def registration(self, endpoint: str) -> Registration:
        """The registration of ``endpoint``; for an :class:`EndDeviceName`, the view of
        that end device behind its gateway (never an ordinary client of that name)."""
        if isinstance(endpoint, EndDeviceName):
            end_device = self.gateways.registration(endpoint)
            if end_device is None:
                raise NotRegistered(endpoint)
            return end_device
        reg = self.registry.by_endpoint.get(endpoint)
        if reg is None:
            raise NotRegistered(endpoint)
        return reg

    def _registration_by_id(self, registration_id: str) -> Registration | None:
        reg = self.registry.by_id.get(registration_id)
        if reg is None and self.end_devices.by_id:
            return self.end_devices.registration_by_id(registration_id)
        return reg

    def context(self, endpoint: str) -> DeviceContext:
        return self.registry.context(self.registration(endpoint))

    def subscribe(self, listener: Any) -> Any:
        return self.events.subscribe(listener)

    # -- sending requests -----------------------------------------------------------------

    async def _send_now(self, reg: Registration, op: Operation,
                        timeout: float | None = None) -> Response:
        started = time.monotonic()
        try:
            response = await self._exchange(reg, op, timeout)
        except BaseException as e:
            for hook in self.request_hooks:
                hook(op, None, time.monotonic() - started, e)
            raise
        for hook in self.request_hooks:
            hook(op, response, time.monotonic() - started, None)
        recorder = self.value_recorder
        if recorder is not None:
            recorder.response(reg, op, response)
        return response

    async def _exchange(self, reg: Registration, op: Operation, timeout: float | None
                        ) -> Response:
        transport = self.transports.get(reg.transport)
        if transport is None:
            raise RequestFailed(f"{reg.endpoint} registered over {reg.transport}, "
                                "which is not running")
        ctx = self.registry.context(reg)
        if isinstance(op, ObserveRequest | ObserveCompositeRequest):
            try:
                return await self.observations.observe(reg, op, transport, timeout=timeout,
                                                       now=self.config.clock())
            except (CoapError, TimeoutError) as e:
                raise RequestFailed(f"{op.kind} on {reg.endpoint}: {e or 'timed out'}") from e
        msg = encode_request(op, ctx)
        try:
            reply = await transport.request(msg, reg.address, timeout=timeout)
        except CoapError as e:
            raise RequestFailed(f"{op.kind} on {reg.endpoint}: {e}") from e
        response = decode_response(op, reply, ctx)
        if isinstance(response, ReadResponse | CompositeResponse) and response.unknown:
            self.unknown_resources.report(reg.endpoint, ctx.model, response.unknown)
        return response

    async def send(self, endpoint: str, op: Operation, *, timeout: float | None = None,
                   queue_ttl: float | None = None, at_most_once: bool = False) -> Response:
        """Send ``op`` to the client and return its response.

        For a sleeping queue-mode client the request is queued and this waits until the
        client wakes and answers (or the request's TTL passes: QueueExpired). Queued
        requests are delivered at least once (sent again if the server restarts while
        sending them); ``at_most_once=True`` never sends one twice (see
        :mod:`aiolwm2m.server.queue_mode`)."""
        reg = self.registration(endpoint)
        if self.queue.is_awake(reg):
            return await self._send_now(reg, op, timeout)
        queued = await self.queue.enqueue(reg, op, queue_ttl, at_most_once=at_most_once)
        return await self.queue.waiter(queued.id)

    async def submit(self, endpoint: str, op: Operation, *, timeout: float | None = None,
                     queue_ttl: float | None = None, at_most_once: bool = False
                     ) -> Response | QueuedRequest:
        """Like :meth:`send`, but returns the queued request at once when the client
        sleeps (what the REST API answers with 202)."""
        reg = self.registration(endpoint)
        if self.queue.is_awake(reg):
            return await self._send_now(reg, op, timeout)
        return await self.queue.enqueue(reg, op, queue_ttl, at_most_once=at_most_once)

    async def send_or_queue(self, endpoint: str, op: Operation) -> Response:
        """Send now, or raise :class:`DeviceSleeping` naming the queued request."""
        result = await self.submit(endpoint, op)
        if isinstance(result, QueuedRequest):
            raise DeviceSleeping(endpoint, result.id)
        return result

    async def queued_request(self, request_id: str) -> QueuedRequest | None:
        assert self._stores is not None
        return await self._stores.queue.get(request_id)

    # -- the device-management API ----------------------------------------------------------

    async def read(self, endpoint: str, path: PathLike, *, format: int | None = None,
                   timeout: float | None = None) -> ReadResponse:
        endpoint, p = _target(endpoint, path)
        resp = await self.send(endpoint, ReadRequest(p, format), timeout=timeout)
        return _typed(resp, ReadResponse)

    async def discover(self, endpoint: str, path: PathLike, *, timeout: float | None = None
                       ) -> DiscoverResponse:
        endpoint, p = _target(endpoint, path)
        resp = await self.send(endpoint, DiscoverRequest(p), timeout=timeout)
        return _typed(resp, DiscoverResponse)

    def build(self, endpoint: str, path: PathLike, value: Any) -> Any:
        """The node for ``value`` at ``path``, typed by the client's model."""
        endpoint, p = _target(endpoint, path)
        return build_node(self.context(endpoint).model, p, value)

    async def write(self, endpoint: str, path: PathLike, value: Any, *, replace: bool = True,
                    format: int | None = None, timeout: float | None = None) -> Response:
        endpoint, p = _target(endpoint, path)
        node = self.build(endpoint, p, value)
        return await self.send(endpoint, WriteRequest(p, node, replace, format),
                               timeout=timeout)

    async def write_attributes(self, endpoint: str, path: PathLike,
                               attributes: AttributeUpdate | str | Iterable[str] | None = None,
                               *, timeout: float | None = None,
                               **values: int | float | None
                               ) -> Response:
        """``write_attributes("ep", "/3/0/13", pmin=10, pmax=60, gt=None)``: None unsets."""
        if attributes is None:
            items = [f"{k}={v}" if v is not None else k for k, v in values.items()]
            attributes = parse_write_attributes(items)
        elif not isinstance(attributes, AttributeUpdate):
            attributes = parse_write_attributes(attributes if isinstance(attributes, str)
                                                else list(attributes))
        endpoint, p = _target(endpoint, path)
        return await self.send(endpoint, WriteAttributesRequest(p, attributes),
                               timeout=timeout)

    async def execute(self, endpoint: str, path: PathLike, arguments: str = "", *,
                      timeout: float | None = None, at_most_once: bool = False) -> Response:
        endpoint, p = _target(endpoint, path)
        return await self.send(endpoint, ExecuteRequest(p, arguments),
                               timeout=timeout, at_most_once=at_most_once)

    async def create(self, endpoint: str, path: PathLike, values: Any, *,
                     instance_id: int | None = None, format: int | None = None,
                     timeout: float | None = None) -> CreateResponse:
        """Create an instance of the object at ``path`` with ``values``
        (``{resource id: value}`` or an ObjectInstance). Without ``instance_id`` (and with
        plain values) the client picks the id: ``response.instance_id`` tells which."""
        endpoint, p = _target(endpoint, path)
        if not p.is_object:
            raise ValueError("Create targets an object path such as /3303")
        iid = instance_id if instance_id is not None else getattr(values, "id", None)
        node = self.build(endpoint, p.child(0 if iid is None else iid), values)
        op = CreateRequest(p, node, format, assign_id=iid is None)
        resp = await self.send(endpoint, op, timeout=timeout)
        return _typed(resp, CreateResponse)

    async def delete(self, endpoint: str, path: PathLike, *, timeout: float | None = None
                     ) -> Response:
        endpoint, p = _target(endpoint, path)
        return await self.send(endpoint, DeleteRequest(p), timeout=timeout)

    async def read_composite(self, endpoint: str, paths: Iterable[PathLike], *,
                             format: int | None = None, timeout: float | None = None
                             ) -> CompositeResponse:
        endpoint, targets = _targets(endpoint, paths)
        op = ReadCompositeRequest(tuple(targets), format)
        return _typed(await self.send(endpoint, op, timeout=timeout), CompositeResponse)

    async def write_composite(self, endpoint: str, values: Mapping[PathLike, Any], *,
                              format: int | None = None, timeout: float | None = None
                              ) -> Response:
        items = list(values.items())
        endpoint, targets = _targets(endpoint, [p for p, _ in items])
        model = self.context(endpoint).model
        nodes = {p: build_node(model, p, v) for p, (_, v) in zip(targets, items, strict=True)}
        return await self.send(endpoint, WriteCompositeRequest.of(nodes, format),
                               timeout=timeout)

    async def observe(self, endpoint: str, path: PathLike, *, format: int | None = None,
                      timeout: float | None = None) -> ObserveResponse:
        endpoint, p = _target(endpoint, path)
        resp = await self.send(endpoint, ObserveRequest(p, format), timeout=timeout)
        return _typed(resp, ObserveResponse)

    async def observe_composite(self, endpoint: str, paths: Iterable[PathLike], *,
                                format: int | None = None, timeout: float | None = None
                                ) -> ObserveResponse:
        endpoint, targets = _targets(endpoint, paths)
        op = ObserveCompositeRequest(tuple(targets), format)
        return _typed(await self.send(endpoint, op, timeout=timeout), ObserveResponse)

    async def cancel_observation(self, endpoint: str, path: PathLike | Iterable[PathLike], *,
                                 active: bool = True) -> bool:
        """Cancel the observation of ``path`` (or of a composite list of paths)."""
        if isinstance(path, str | LwM2MPath):
            endpoint, single = _target(endpoint, path)
            key: tuple[str, ...] = (str(single),)
        else:
            endpoint, targets = _targets(endpoint, path)
            key = tuple(str(p) for p in targets)
        reg = self.registration(endpoint)
        record = self.observations.find(reg.id, key)
        if record is None:
            return False
        return await self.observations.cancel(reg, record.token, active=active)

    def emit(self, event: Event) -> None:
        self.events.emit(event)


def _log_registration(what: str, reg: Registration, replaced: Registration | None) -> None:
    """One line per registration change, greppable by endpoint name. Callers check the
    level first, so a disabled level costs no formatting."""
    identity = f" as {reg.identity}" if reg.identity is not None else ""
    if replaced is None:
        log.log(logging.DEBUG if what == "updated" else logging.INFO,
                "%s %s id=%s over %s from %s:%s%s lt=%d", what, reg.endpoint, reg.id,
                reg.transport, reg.address[0], reg.address[1], identity, reg.lifetime)
    else:
        log.info("%s %s id=%s over %s from %s:%s%s lt=%d, replacing id=%s (%s from %s:%s)",
                 what, reg.endpoint, reg.id, reg.transport, reg.address[0], reg.address[1],
                 identity, reg.lifetime, replaced.id, replaced.transport,
                 replaced.address[0], replaced.address[1])


def _typed(resp: Response, cls: type[R]) -> R:
    """Error responses come back as plain Response; give callers the expected type."""
    if isinstance(resp, cls):
        return resp
    return cls(resp.code, resp.diagnostic, resp.format)


__all__ = ["LwM2MServer", "Origin"]
