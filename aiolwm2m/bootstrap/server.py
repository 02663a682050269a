"""The LwM2M Bootstrap-Server.

Client-initiated: a client sends ``POST /bs?ep=NAME[&pct=FORMAT]``; the server answers 2.04
(or 4.00 when it has no configuration for the endpoint) and then runs the session against
the client's address, over the transport the request came on. Server-initiated:
:meth:`BootstrapServer.bootstrap` runs a session against a client at a known address.
Configurations come from a file and the Python API and are kept, with every session, in the
store (SQLite by default, or memory).

Transports: coap:// (UDP ``port``), and when their ports are set coaps:// (DTLS),
coap+tcp:// and coaps+tcp:// (TLS). A client authenticates to a secure transport with its
bootstrap credentials, the ``bootstrap_credentials`` of its :class:`EndpointConfig` and
nothing else (the LwM2M server's security store holds what devices present to *that*
server). An endpoint that has bootstrap credentials is only bootstrapped over a session
authenticated with exactly them; an authenticated identity is only bootstrapped as the
endpoint it belongs to (4.03 Forbidden otherwise, like Register). Endpoints without any may
bootstrap over NoSec. A configuration may only carry bootstrap credentials that a running
secure listener can check (:class:`ConfigurationConflict` otherwise).

With ``server_security`` (the LwM2M server's security store), storing a configuration that
provisions a PSK, RPK or X.509 server account also makes that server accept exactly that
account for the endpoint, in the same call (:mod:`.server_accounts`); removing it removes
the account when asked to. :meth:`BootstrapServer.provision` builds such a configuration
with fresh credentials.

Every refused request is counted, logged, emitted and recorded as a ``refused`` session
(:mod:`.refusals`); replies to the device never name the identity it should have used.
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
from aiolwm2m.coap.errors import BadRequest, CoapError, Forbidden
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import UriError, parse_uri
from aiolwm2m.lwm2m.coap_mapping import DeviceContext, decode_response, encode_request
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.security.config import ServerCredentials
from aiolwm2m.security.credentials import PeerIdentity, RpkCredentials, X509Credentials
from aiolwm2m.store.bootstrap_memory import MemoryBootstrapStores
from aiolwm2m.store.bootstrap_sqlite import SQLiteBootstrapStores
from aiolwm2m.store.bootstrap_store import (
    FAILED,
    FINISHED,
    REFUSED,
    BootstrapConfigRecord,
    BootstrapSessionRecord,
    BootstrapStores,
)
from aiolwm2m.store.interfaces import SecurityStore
from aiolwm2m.store.redis_connect import is_redis_url
from aiolwm2m.store.selection import open_bootstrap_stores
from aiolwm2m.transport.dtls import DtlsEndpoint
from aiolwm2m.transport.interface import Endpoint
from aiolwm2m.transport.site import Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsServerSecurity
from aiolwm2m.transport.udp import UdpEndpoint

from . import refusals as why
from .configuration import (
    DEFAULT_ENDPOINT,
    ConfigurationConflict,
    ConfigurationError,
    EndpointConfig,
    load_config_file,
)
from .credentials import AccountCredentials, BootstrapCredentials, CredentialsError
from .events import (
    BootstrapEvents,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from .refusals import BootstrapRefusals, RefusalSink
from .server_accounts import CredentialsChange, ServerAccounts, principal
from .session import CONTINUE, DONE, BootstrapSession, describe, plan

log = logging.getLogger(__name__)

_FORMATS = frozenset({ContentFormat.TLV, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR,
                      ContentFormat.LWM2M_CBOR, ContentFormat.LWM2M_JSON})


#: The transport carrying each scheme (names as in ``BootstrapServer.transports``).
_TRANSPORT_OF_SCHEME = {"coap": "udp", "coaps": "dtls", "coap+tcp": "tcp", "coaps+tcp": "tls"}


@dataclass
class BootstrapServerConfig:
    host: str = "::"
    #: UDP port for coap:// (None: no NoSec UDP).
    port: int | None = 5683
    #: UDP port for coaps:// (DTLS), TCP ports for coap+tcp:// and coaps+tcp:// (TLS);
    #: None leaves each off. PSK clients are always accepted on the secure ones; RPK and
    #: X.509 clients need our own key pair or certificate below.
    coaps_port: int | None = None
    tcp_port: int | None = None
    tls_port: int | None = None
    dtls_rpk: RpkCredentials | None = None
    #: Our certificate chain and key; its trust anchors and usage judge client certificates.
    dtls_x509: X509Credentials | None = None
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
    #: Refused requests are recorded as sessions, but anyone can send them: at most one
    #: record per endpoint and reason per ``refusal_record_interval`` seconds and
    #: ``refusal_record_burst`` in all per interval (the rest are still counted, logged and
    #: emitted), and only the newest ``max_refused_sessions`` records are kept.
    refusal_record_interval: float = 10.0
    refusal_record_burst: int = 20
    max_refused_sessions: int = 1000

    @property
    def database(self) -> Path:
        return self.data_dir / "aiolwm2m.sqlite3"


class _BootstrapRequestResource(Resource):
    def __init__(self, server: BootstrapServer, transport: str) -> None:
        super().__init__()
        self.server = server
        self.transport = transport

    def render_post(self, request: Message) -> Message:
        return self.server._bootstrap_request(request, self.transport)


class BootstrapCredentialLookup:
    """The DTLS/TLS handshakes' view of who may connect: the bootstrap credentials of the
    configurations (synchronous, in-memory lookups). Credentials nobody has are refused
    in the handshake and reported as such."""

    def __init__(self, server: BootstrapServer, transport: str) -> None:
        self.server = server
        self.transport = transport

    def _unknown(self, what: str) -> None:
        self.server._refuse(self.transport, why.UNKNOWN_CREDENTIALS, None, None,
                            f"{what} that no configuration has")

    def psk_key(self, identity: bytes) -> bytes | None:
        entry = self.server._psk_index.get(identity)
        if entry is None:
            self._unknown(f"PSK identity {identity[:64]!r}")
            return None
        return entry[1]

    def rpk_allowed(self, spki_der: bytes) -> bool:
        if spki_der in self.server._rpk_index:
            return True
        self._unknown("a raw public key")
        return False

    def x509_allowed(self, identity: PeerIdentity) -> bool:
        for name in (identity.x509_subject_cn, *identity.x509_san):
            if name and name in self.server._x509_index:
                return True
        self._unknown(f"certificate {identity.name[:64]!r}")
        return False


class BootstrapServer:
    def __init__(self, config: BootstrapServerConfig | None = None, *,
                 stores: BootstrapStores | None = None, model: ModelRegistry | None = None,
                 server_security: SecurityStore | None = None,
                 refusal_sink: RefusalSink | None = None) -> None:
        self.config = config or BootstrapServerConfig()
        self.model = model or ModelRegistry.with_core_objects()
        self.events = BootstrapEvents()
        #: The LwM2M server's security store: the server accounts configurations provision
        #: are installed there (None: configurations are only stored).
        self.server_security = server_security
        cfg = self.config
        self.refusals = BootstrapRefusals(self.events.emit, cfg.clock,
                                          record_interval=cfg.refusal_record_interval,
                                          record_burst=cfg.refusal_record_burst)
        self.refusals.sink = refusal_sink
        #: The listener (``udp``, ``dtls``...) whose socket could not be opened, after
        #: start() failed with OSError.
        self.failed_listener: str | None = None
        self._refusal_saves: set[asyncio.Task[None]] = set()
        self._records_since_trim = 0
        self._config_lock = asyncio.Lock()
        self._stores = stores
        self.transports: dict[str, Endpoint] = {}
        self._running: dict[str, asyncio.Task[BootstrapSessionRecord]] = {}
        self._active: dict[str, BootstrapSession] = {}
        self._configs: dict[str, EndpointConfig] = {}
        self._psk_index: dict[bytes, tuple[str, bytes]] = {}
        self._rpk_index: dict[bytes, str] = {}
        self._x509_index: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        if self._stores is None:
            if cfg.store == "sqlite":
                self._stores = await SQLiteBootstrapStores.open(
                    cfg.database, synchronous=cfg.sqlite_synchronous)
            elif is_redis_url(cfg.store):
                self._stores = await open_bootstrap_stores(cfg.store, cfg.database)
            else:
                self._stores = MemoryBootstrapStores()
        for record in await self.stores.configs.all():
            self._configs[record.endpoint] = EndpointConfig.from_dict(record.config)
        self._reindex()
        unusable = [ep for ep, c in self._configs.items() if c.bootstrap_credentials is not None
                    and self._listener_problem(c) is not None]
        if unusable:
            log.warning("%d stored configuration(s) (%s) have bootstrap credentials no "
                        "listener of this Bootstrap-Server can check: %s", len(unusable),
                        ", ".join(sorted(unusable)[:5]),
                        self._listener_problem(self._configs[unusable[0]]))
        await self.stores.sessions.trim(REFUSED, cfg.max_refused_sessions)
        if cfg.config_file is not None:
            for endpoint, econf in load_config_file(cfg.config_file).items():
                await self.set_config(endpoint, econf)
        try:
            await self._open_transports()
        except BaseException:
            await self._close_transports()
            raise

    async def _open_transports(self) -> None:
        cfg = self.config

        def credentials(transport: str) -> ServerCredentials:
            return ServerCredentials(BootstrapCredentialLookup(self, transport), psk=True,
                                     rpk=cfg.dtls_rpk, x509=cfg.dtls_x509)

        # Each name is set before its socket opens, so it names the one that failed.
        if cfg.port is not None:
            self.failed_listener = "udp"
            self.transports["udp"] = await UdpEndpoint.create(
                cfg.host, cfg.port, site=self._site("udp"), params=cfg.transmission)
        if cfg.coaps_port is not None:
            self.failed_listener = "dtls"
            self.transports["dtls"] = await DtlsEndpoint.create(
                cfg.host, cfg.coaps_port, site=self._site("dtls"), params=cfg.transmission,
                server_credentials=credentials("dtls"))
        if cfg.tcp_port is not None:
            self.failed_listener = "tcp"
            self.transports["tcp"] = await TcpEndpoint.create(
                cfg.host, cfg.tcp_port, site=self._site("tcp"), dial=False)
        if cfg.tls_port is not None:
            self.failed_listener = "tls"
            self.transports["tls"] = await TcpEndpoint.create(
                cfg.host, cfg.tls_port, site=self._site("tls"), dial=False,
                tls_server=TlsServerSecurity(credentials("tls")))
        self.failed_listener = None
        if not self.transports:
            raise ValueError("the bootstrap server has no transport (every port is None)")

    def _site(self, transport: str) -> Site:
        site = Site(well_known_core=False)
        site.add("bs", _BootstrapRequestResource(self, transport))
        return site

    async def _close_transports(self) -> None:
        transports = list(self.transports.values())
        self.transports.clear()
        for endpoint in transports:
            await endpoint.close()

    async def stop(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_transports()
        if self._refusal_saves:  # the records of the last refusals, before the store closes
            await asyncio.gather(*self._refusal_saves, return_exceptions=True)
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
    def endpoint(self) -> Endpoint:
        """The coap:// (UDP) transport, or the first one when UDP is off."""
        if not self.transports:
            raise RuntimeError("the bootstrap server is not started")
        return self.transports.get("udp") or next(iter(self.transports.values()))

    @property
    def port(self) -> int:
        return self.endpoint.port

    def port_of(self, transport: str) -> int:
        """The port of ``udp``, ``dtls``, ``tcp`` or ``tls``."""
        return self.transports[transport].port

    # -- configurations -------------------------------------------------------------------

    async def set_config(self, endpoint: str, config: EndpointConfig, *,
                         server_security: SecurityStore | None = None) -> CredentialsChange:
        """Store the configuration of ``endpoint`` (``"*"``: the default for all others),
        and install the server account it provisions in the LwM2M server's security store
        (``server_security``, by default :attr:`server_security`; none: nothing to
        install). Returns what happened to the endpoint's credentials there.

        Raises ConfigurationConflict when its bootstrap credentials are another endpoint's
        or no running listener could check them, or when the account's identity belongs
        to another endpoint in the LwM2M server (nothing is changed then)."""
        async with self._config_lock:
            self._check_credentials(endpoint, config.bootstrap_credentials)
            if config.bootstrap_credentials is not None:
                problem = self._listener_problem(config)
                if problem is not None:
                    raise ConfigurationConflict(problem)
            store = server_security or self.server_security
            change, undo = (await ServerAccounts(store).install(endpoint, config)
                            if store is not None else (CredentialsChange(endpoint), None))
            try:
                await self.stores.configs.put(BootstrapConfigRecord(
                    endpoint, config.to_dict(), self.config.clock()))
            except BaseException:
                if undo is not None:
                    await undo()
                raise
            self._configs[endpoint] = config
            self._reindex()
        if change.installed is not None:
            log.info("bootstrap configuration of %s stored; the LwM2M server accepts %s for "
                     "it", endpoint, principal(change.installed))
        return change

    async def remove_config(self, endpoint: str, *, remove_credentials: bool = False
                            ) -> CredentialsChange | None:
        """Remove the configuration of ``endpoint``; None when it had none. With
        ``remove_credentials`` the server account it provisioned leaves the LwM2M server's
        security store too; the answer says what stays there."""
        async with self._config_lock:
            config = self._configs.pop(endpoint, None)
            self._reindex()
            removed = await self.stores.configs.remove(endpoint)
            if config is None and removed is None:
                return None
            if self.server_security is None:
                return CredentialsChange(endpoint)
            return await ServerAccounts(self.server_security).release(
                endpoint, config, remove=remove_credentials)

    def _listener_problem(self, config: EndpointConfig) -> str | None:
        """Why a device could not present ``config``'s bootstrap credentials to any of our
        listeners (None: it can)."""
        creds = config.bootstrap_credentials
        cfg = self.config
        if creds is None:
            return None
        if cfg.coaps_port is None and cfg.tls_port is None:
            return ("bootstrap_credentials need a secure bootstrap listener (coaps:// or "
                    "coaps+tcp://), and this Bootstrap-Server runs none")
        if creds.rpk_public_key is not None and cfg.dtls_rpk is None:
            return ("RPK bootstrap_credentials need the Bootstrap-Server's own raw public "
                    "key (rpk key), and it has none")
        if creds.x509_identity is not None and cfg.dtls_x509 is None:
            return ("X.509 bootstrap_credentials need the Bootstrap-Server's own "
                    "certificate, and it has none")
        return None

    def _check_credentials(self, endpoint: str, creds: BootstrapCredentials | None) -> None:
        if creds is None:
            return
        if endpoint == DEFAULT_ENDPOINT:
            raise ConfigurationError("bootstrap credentials belong to one endpoint, not to "
                                     "the default configuration '*'")
        owner: str | None = None
        if creds.psk_identity is not None:
            entry = self._psk_index.get(creds.psk_identity)
            owner = entry[0] if entry is not None else None
        elif creds.rpk_public_key is not None:
            owner = self._rpk_index.get(creds.rpk_public_key)
        elif creds.x509_identity is not None:
            owner = self._x509_index.get(creds.x509_identity)
        if owner is not None and owner != endpoint:
            raise ConfigurationConflict(f"bootstrap credentials {creds.identity} already "
                                        f"belong to endpoint {owner!r}")

    def _reindex(self) -> None:
        self._psk_index.clear()
        self._rpk_index.clear()
        self._x509_index.clear()
        for endpoint, config in self._configs.items():
            creds = config.bootstrap_credentials
            if creds is None or endpoint == DEFAULT_ENDPOINT:
                continue
            if creds.psk_identity is not None and creds.psk_key is not None:
                self._psk_index[creds.psk_identity] = (endpoint, creds.psk_key)
            if creds.rpk_public_key is not None:
                self._rpk_index[creds.rpk_public_key] = endpoint
            if creds.x509_identity is not None:
                self._x509_index[creds.x509_identity] = endpoint

    def bootstrap_identity(self, endpoint: str) -> str | None:
        """The identity ``endpoint`` must bootstrap with (``PeerIdentity.key`` form), or
        None when it may bootstrap without security."""
        config = self._configs.get(endpoint)
        if config is not None and config.bootstrap_credentials is not None:
            return config.bootstrap_credentials.identity
        return None

    def config_for(self, endpoint: str) -> EndpointConfig | None:
        return self._configs.get(endpoint) or self._configs.get(DEFAULT_ENDPOINT)

    @property
    def configs(self) -> dict[str, EndpointConfig]:
        return dict(self._configs)

    # -- sessions ---------------------------------------------------------------------------

    def _refuse(self, transport: str, reason: str, endpoint: str | None, peer: str | None,
                detail: str) -> None:
        record = self.refusals.refused(transport=transport, reason=reason,
                                       endpoint=endpoint, detail=detail, peer=peer)
        if record is not None:
            task = asyncio.get_running_loop().create_task(self._keep_refusal(record))
            self._refusal_saves.add(task)
            task.add_done_callback(self._refusal_saves.discard)

    async def _keep_refusal(self, record: BootstrapSessionRecord) -> None:
        try:
            await self.stores.sessions.save(record)
            # Trimmed every tenth of the limit: at most 10% over it, one scan per batch.
            keep = self.config.max_refused_sessions
            self._records_since_trim += 1
            if self._records_since_trim >= max(1, keep // 10):
                self._records_since_trim = 0
                await self.stores.sessions.trim(REFUSED, keep)
        except Exception:
            log.exception("could not record the refused bootstrap of %s", record.endpoint)

    def _bootstrap_request(self, request: Message, transport: str) -> Message:
        params = request.query_params()
        endpoint = params.get("ep")
        peer = _address_text(request.remote)
        if not endpoint:
            self._refuse(transport, why.BAD_REQUEST, None, peer,
                         "Bootstrap-Request without endpoint name")
            raise BadRequest("Bootstrap-Request needs the endpoint name (ep=)")
        # The replies say what was wrong but never which identity was expected.
        identity = self.transports[transport].identity_of(request.remote)
        wanted = self.bootstrap_identity(endpoint)
        if wanted is not None and identity is None:
            self._refuse(transport, why.NOSEC, endpoint, peer,
                         f"NoSec Bootstrap-Request; the endpoint must authenticate as {wanted}")
            raise Forbidden("this endpoint must bootstrap over a secure transport")
        if identity is not None and identity != wanted:
            self._refuse(transport, why.WRONG_IDENTITY, endpoint, peer,
                         f"authenticated as {identity}; the endpoint's bootstrap "
                         f"credentials are {wanted or 'none (NoSec)'}")
            raise Forbidden("the authenticated identity may not bootstrap this endpoint")
        config = self.config_for(endpoint)
        if config is None:
            self._refuse(transport, why.UNKNOWN_ENDPOINT, endpoint, peer,
                         "no configuration for the endpoint and no default ('*')")
            raise BadRequest("no bootstrap configuration for this endpoint")
        fmt = config.content_format
        pct = params.get("pct")
        if fmt is None and pct:
            if not pct.isdigit() or int(pct) not in _FORMATS:
                self._refuse(transport, why.BAD_REQUEST, endpoint, peer,
                             f"pct={pct[:16]} is not a format this server writes")
                raise BadRequest("pct is not a format this server writes")
            fmt = int(pct)
        active = self._active.get(endpoint)
        if active is not None and active.outcome == CONTINUE:
            return request.response(Code.CHANGED)  # a repeated request joins the session
        address = request.remote
        # Started on the next loop iteration, after the 2.04 has gone out.
        self._running[endpoint] = asyncio.get_running_loop().create_task(
            self._session(endpoint, transport, address, config, fmt, server_initiated=False))
        return request.response(Code.CHANGED)

    async def bootstrap(self, endpoint: str, address: str | tuple[Any, ...], *,
                        config: EndpointConfig | None = None, transport: str = "udp"
                        ) -> BootstrapSessionRecord:
        """Server-initiated bootstrap of the client ``endpoint`` at ``address``
        (``coap://host:port`` or a socket address on ``transport``). Over coaps://,
        coap+tcp:// and coaps+tcp:// this needs the DTLS session or the connection the
        client opened earlier (we are never the DTLS/TLS client). Returns the finished
        session record."""
        if isinstance(address, str):
            uri = parse_uri(address)
            transport = _TRANSPORT_OF_SCHEME[uri.scheme]
            if transport not in self.transports:
                raise UriError(f"{uri.scheme}:// is not served by this bootstrap server")
            target = self.transports[transport]
            address = (await target.resolve(uri.host, uri.port)
                       if isinstance(target, UdpEndpoint) else (uri.host, uri.port))
        econf = config or self.config_for(endpoint)
        if econf is None:
            raise KeyError(f"no bootstrap configuration for {endpoint!r}")
        task = asyncio.get_running_loop().create_task(
            self._session(endpoint, transport, address, econf, econf.content_format,
                          server_initiated=True))
        self._running[endpoint] = task
        return await task

    async def wait_idle(self) -> None:
        """Wait until no session is running and every refusal's record is stored."""
        while self._refusal_saves:
            await asyncio.gather(*self._refusal_saves, return_exceptions=True)
        while self._running:
            tasks = list(self._running.values())
            await asyncio.gather(*tasks, return_exceptions=True)
            for ep, t in list(self._running.items()):
                if t.done():
                    del self._running[ep]

    async def _session(self, endpoint: str, transport: str, address: Any,
                       config: EndpointConfig, fmt: int | None, *, server_initiated: bool
                       ) -> BootstrapSessionRecord:
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
            await self._drive(session, self.transports[transport], address, ctx)
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

    async def _drive(self, session: BootstrapSession, endpoint: Endpoint, address: Any,
                     ctx: DeviceContext) -> None:
        while (op := session.current) is not None:
            what = describe(op)
            msg = encode_request(op, ctx)
            session.sent()
            self.events.emit(RequestSent(session.id, session.endpoint, what, session.tries))
            try:
                reply = await endpoint.request(msg, address,
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

    # -- provisioning ---------------------------------------------------------------------

    async def provision(self, endpoint: str, server_uri: str, *,
                        server_security: SecurityStore | None = None,
                        credentials: AccountCredentials | None = None, mode: str = "psk",
                        server_public_key: bytes | None = None, short_server_id: int = 1,
                        lifetime: int = 300, binding: str | None = None,
                        bootstrap_credentials: BootstrapCredentials | None = None,
                        **server: Any) -> AccountCredentials:
        """Configure ``endpoint`` to be bootstrapped onto ``server_uri``, and return the
        account's credentials.

        For a coaps:// or coaps+tcp:// URI without ``credentials``, fresh ones are made:
        a random 128-bit PSK with the endpoint name as identity (``mode="psk"``), or a new
        P-256 key pair pinning ``server_public_key`` (``mode="rpk"``); certificates must
        be given. With ``server_security`` (the LwM2M server's security store; by default
        :attr:`server_security`) the matching entry is installed there in the same step,
        so the device can register as soon as it has bootstrapped::

            await bootstrap.provision("dev-1", "coaps://lwm2m.example:5684",
                                      server_security=lwm2m_server.stores.security)
        """
        try:
            secure = parse_uri(server_uri).secure
        except UriError as e:
            raise ConfigurationError(f"server URI: {e}") from None
        try:
            if credentials is None and secure:
                if mode == "psk":
                    credentials = AccountCredentials.new_psk(endpoint)
                elif mode == "rpk":
                    if server_public_key is None:
                        raise ConfigurationError("RPK provisioning needs the LwM2M server's "
                                                 "public key (server_public_key)")
                    credentials = AccountCredentials.new_rpk(server_public_key)
                else:
                    raise ConfigurationError(f"cannot generate {mode!r} credentials: pass "
                                             "credentials=AccountCredentials.x509(...)")
            config = EndpointConfig.for_server(
                server_uri, short_server_id, lifetime=lifetime, binding=binding,
                security=credentials, bootstrap_credentials=bootstrap_credentials, **server)
        except CredentialsError as e:
            raise ConfigurationError(str(e)) from None
        await self.set_config(endpoint, config, server_security=server_security)
        return credentials or AccountCredentials()


def _address_text(address: Any) -> str:
    host, port = str(address[0]), int(address[1])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
