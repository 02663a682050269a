"""The LwM2M Bootstrap-Server.

Client-initiated: a client sends ``POST /bs?ep=NAME[&pct=FORMAT]``; the server answers 2.04
(or 4.00 when it has no configuration for the endpoint) and then runs the session against
the client's address. Server-initiated: :meth:`BootstrapServer.bootstrap` runs a session
against a client at a known address. Configurations come from a file and the Python API
and are kept, with every session, in the store (SQLite by default, or memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.lwm2m.coap_mapping import DeviceContext, decode_response, encode_request
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.store.bootstrap_memory import MemoryBootstrapStores
from aiolwm2m.store.bootstrap_sqlite import SQLiteBootstrapStores
from aiolwm2m.store.bootstrap_store import (
    FAILED,
    FINISHED,
    BootstrapConfigRecord,
    BootstrapSessionRecord,
    BootstrapStores,
)
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

from .configuration import DEFAULT_ENDPOINT, EndpointConfig, load_config_file
from .events import (
    BootstrapEvents,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from .session import CONTINUE, DONE, BootstrapSession, describe, plan

log = logging.getLogger(__name__)

_FORMATS = frozenset({ContentFormat.TLV, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR,
                      ContentFormat.LWM2M_CBOR, ContentFormat.LWM2M_JSON})


@dataclass
class BootstrapServerConfig:
    host: str = "::"
    port: int = 5683
    store: str = "sqlite"
    data_dir: Path = field(default_factory=lambda: Path("aiolwm2m-data"))
    sqlite_synchronous: str = "FULL"
    #: A TOML or JSON file of endpoint configurations loaded at start.
    config_file: Path | None = None
    #: Bound on the wait for each bootstrap request's response.
    request_timeout: float = 30.0
    #: How many times a request without response is sent before the session fails.
    attempts: int = 3
    #: Format of the Bootstrap-Writes when neither the configuration nor the client's
    #: ``pct`` names one (TLV: every 1.0 and 1.1 client reads it).
    default_format: int = ContentFormat.TLV
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    clock: Callable[[], float] = time.time

    @property
    def database(self) -> Path:
        return self.data_dir / "aiolwm2m.sqlite3"


class _BootstrapRequestResource(Resource):
    def __init__(self, server: BootstrapServer) -> None:
        super().__init__()
        self.server = server

    def render_post(self, request: Message) -> Message:
        return self.server._bootstrap_request(request)


class BootstrapServer:
    def __init__(self, config: BootstrapServerConfig | None = None, *,
                 stores: BootstrapStores | None = None, model: ModelRegistry | None = None
                 ) -> None:
        self.config = config or BootstrapServerConfig()
        self.model = model or ModelRegistry.with_core_objects()
        self.events = BootstrapEvents()
        self._stores = stores
        self._endpoint: UdpEndpoint | None = None
        self._running: dict[str, asyncio.Task[BootstrapSessionRecord]] = {}
        self._active: dict[str, BootstrapSession] = {}
        self._configs: dict[str, EndpointConfig] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        if self._stores is None:
            if cfg.store == "sqlite":
                self._stores = await SQLiteBootstrapStores.open(
                    cfg.database, synchronous=cfg.sqlite_synchronous)
            else:
                self._stores = MemoryBootstrapStores()
        for record in await self.stores.configs.all():
            self._configs[record.endpoint] = EndpointConfig.from_dict(record.config)
        if cfg.config_file is not None:
            for endpoint, econf in load_config_file(cfg.config_file).items():
                await self.set_config(endpoint, econf)
        site = Site(well_known_core=False)
        site.add("bs", _BootstrapRequestResource(self))
        self._endpoint = await UdpEndpoint.create(cfg.host, cfg.port, site=site,
                                                  params=cfg.transmission)

    async def stop(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._endpoint is not None:
            await self._endpoint.close()
            self._endpoint = None
        if self._stores is not None:
            await self._stores.close()

    async def __aenter__(self) -> BootstrapServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def stores(self) -> BootstrapStores:
        if self._stores is None:
            raise RuntimeError("the bootstrap server is not started")
        return self._stores

    @property
    def endpoint(self) -> UdpEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the bootstrap server is not started")
        return self._endpoint

    @property
    def port(self) -> int:
        return self.endpoint.port

    # -- configurations -------------------------------------------------------------------

    async def set_config(self, endpoint: str, config: EndpointConfig) -> None:
        """Store the configuration of ``endpoint`` (``"*"``: the default for all others)."""
        await self.stores.configs.put(BootstrapConfigRecord(endpoint, config.to_dict(),
                                                            self.config.clock()))
        self._configs[endpoint] = config

    async def remove_config(self, endpoint: str) -> bool:
        self._configs.pop(endpoint, None)
        return await self.stores.configs.remove(endpoint) is not None

    def config_for(self, endpoint: str) -> EndpointConfig | None:
        return self._configs.get(endpoint) or self._configs.get(DEFAULT_ENDPOINT)

    @property
    def configs(self) -> dict[str, EndpointConfig]:
        return dict(self._configs)

    # -- sessions ---------------------------------------------------------------------------

    def _bootstrap_request(self, request: Message) -> Message:
        params = request.query_params()
        endpoint = params.get("ep")
        if not endpoint:
            raise BadRequest("Bootstrap-Request needs the endpoint name (ep=)")
        config = self.config_for(endpoint)
        if config is None:
            raise BadRequest(f"no bootstrap configuration for {endpoint!r}")
        fmt = config.content_format
        pct = params.get("pct")
        if fmt is None and pct:
            if not pct.isdigit() or int(pct) not in _FORMATS:
                raise BadRequest(f"pct={pct} is not a format this server writes")
            fmt = int(pct)
        active = self._active.get(endpoint)
        if active is not None and active.outcome == CONTINUE:
            return request.response(Code.CHANGED)  # a repeated request joins the session
        address = request.remote
        # Started on the next loop iteration, after the 2.04 has gone out.
        self._running[endpoint] = asyncio.get_running_loop().create_task(
            self._session(endpoint, address, config, fmt, server_initiated=False))
        return request.response(Code.CHANGED)

    async def bootstrap(self, endpoint: str, address: str | tuple[Any, ...], *,
                        config: EndpointConfig | None = None) -> BootstrapSessionRecord:
        """Server-initiated bootstrap of the client ``endpoint`` listening at ``address``
        (``coap://host:port`` or a socket address). Returns the finished session record."""
        if isinstance(address, str):
            uri = parse_uri(address)
            address = await self.endpoint.resolve(uri.host, uri.port)
        econf = config or self.config_for(endpoint)
        if econf is None:
            raise KeyError(f"no bootstrap configuration for {endpoint!r}")
        task = asyncio.get_running_loop().create_task(
            self._session(endpoint, address, econf, econf.content_format,
                          server_initiated=True))
        self._running[endpoint] = task
        return await task

    async def wait_idle(self) -> None:
        """Wait until no session is running."""
        while self._running:
            tasks = list(self._running.values())
            await asyncio.gather(*tasks, return_exceptions=True)
            for ep, t in list(self._running.items()):
                if t.done():
                    del self._running[ep]

    async def _session(self, endpoint: str, address: Any, config: EndpointConfig,
                       fmt: int | None, *, server_initiated: bool) -> BootstrapSessionRecord:
        clock = self.config.clock
        sid = secrets.token_urlsafe(9)
        record = BootstrapSessionRecord(sid, endpoint, _address_text(address), clock(),
                                        server_initiated=server_initiated)
        await self.stores.sessions.save(record)
        self.events.emit(SessionStarted(sid, endpoint, record.address, server_initiated))
        ctx = DeviceContext(self.model, format=fmt or self.config.default_format)
        session = BootstrapSession(sid, endpoint, plan(config, self.model),
                                   attempts=self.config.attempts)
        self._active[endpoint] = session
        try:
            await self._drive(session, address, ctx)
        except asyncio.CancelledError:
            session.on_error("bootstrap server stopped")
            self._active.pop(endpoint, None)
            await self._close(record, session)
            raise
        except Exception as e:
            log.exception("bootstrap session %s of %s failed", sid, endpoint)
            session.on_error(f"internal error: {e}")
        if self._active.get(endpoint) is session:
            del self._active[endpoint]
        record = await self._close(record, session)
        if self._running.get(endpoint) is asyncio.current_task():
            del self._running[endpoint]
        return record

    async def _drive(self, session: BootstrapSession, address: Any, ctx: DeviceContext
                     ) -> None:
        while (op := session.current) is not None:
            what = describe(op)
            msg = encode_request(op, ctx)
            session.sent()
            self.events.emit(RequestSent(session.id, session.endpoint, what, session.tries))
            try:
                reply = await self.endpoint.request(msg, address,
                                                    timeout=self.config.request_timeout)
            except CoapError as e:
                if session.on_timeout(str(e) or type(e).__name__) == CONTINUE:
                    continue
                return
            try:
                response = decode_response(op, reply, ctx)
            except LwM2MError as e:
                session.on_error(f"{what}: {e}")
                return
            self.events.emit(RequestAnswered(session.id, session.endpoint, what,
                                             response.code_text))
            if session.on_response(response) == DONE:
                return

    async def _close(self, record: BootstrapSessionRecord, session: BootstrapSession
                     ) -> BootstrapSessionRecord:
        ok = session.outcome == DONE
        record = record.with_changes(state=FINISHED if ok else FAILED,
                                     finished_at=self.config.clock(),
                                     requests=session.answered, error=session.error)
        await self.stores.sessions.save(record)
        if ok:
            log.info("bootstrapped %s in %d requests", session.endpoint, session.answered)
            self.events.emit(SessionFinished(session.id, session.endpoint))
        else:
            log.warning("bootstrap of %s failed: %s", session.endpoint, session.error)
            self.events.emit(SessionFailed(session.id, session.endpoint,
                                           session.error or "failed"))
        return record

    async def sessions(self, endpoint: str | None = None) -> list[BootstrapSessionRecord]:
        if endpoint is None:
            return await self.stores.sessions.recent()
        return await self.stores.sessions.for_endpoint(endpoint)


def _address_text(address: Any) -> str:
    host, port = str(address[0]), int(address[1])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
