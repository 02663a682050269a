"""Server configuration."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiolwm2m.cluster.settings import DEFAULT_CLUSTER_SETTINGS, ClusterSettings
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.reassembly_limits import DEFAULT_REASSEMBLY_LIMITS, ReassemblyLimits
from aiolwm2m.coap.tcp_connection import DEFAULT_TCP_PARAMETERS, TcpParameters
from aiolwm2m.groups.limits import DEFAULT_GROUP_LIMITS, GroupLimits
from aiolwm2m.http2.limits import DEFAULT_HTTP2_LIMITS, Http2Limits
from aiolwm2m.nidd.settings import DEFAULT_NIDD_SETTINGS, NiddSettings
from aiolwm2m.rd.config import DEFAULT_RD_LIMITS, RdLimits
from aiolwm2m.rd.policy import RdPolicy
from aiolwm2m.security.config import DEFAULT_DTLS_SERVER_CONFIG, DtlsServerConfig
from aiolwm2m.security.credentials import RpkCredentials, X509Credentials
from aiolwm2m.transport.stream_limits import DEFAULT_STREAM_LIMITS, StreamLimits


@dataclass
class ServerConfig:
    host: str = "::"
    port: int = 5683
    #: UDP port for CoAP over DTLS (coaps://); None leaves DTLS off. PSK clients are
    #: authenticated from the security store; RPK and X.509 need the server's own key or
    #: certificate below.
    coaps_port: int | None = None
    #: TCP ports for coap+tcp:// and coaps+tcp:// (RFC 8323); None leaves them off.
    tcp_port: int | None = None
    tls_port: int | None = None
    #: TCP port for LwM2M over HTTP/2 (``aiolwm2m.http2``, binding H); None leaves it off.
    #: TLS with ALPN h2 when ``dtls_x509`` is set, else h2c with prior knowledge. Its
    #: connections share ``tcp_limits``; what one peer may hold is ``http2_limits``.
    http2_port: int | None = None
    http2_limits: Http2Limits = DEFAULT_HTTP2_LIMITS
    #: API root of a SCEF serving the T8 NIDD API (3GPP TS 29.122), e.g.
    #: ``http://scef:8800``: non-IP devices (binding N) are reached through it
    #: (``aiolwm2m.nidd``); None leaves NIDD off.
    scef_url: str | None = None
    #: NIDD devices and groups, the callback URL the SCEF posts to, time to live, quotas,
    #: timers and limits (``aiolwm2m.nidd.settings.NiddSettings``).
    nidd: NiddSettings = DEFAULT_NIDD_SETTINGS
    #: RFC 8323 settings of those connections (Max-Message-Size, CSM and frame timeouts).
    tcp_parameters: TcpParameters = DEFAULT_TCP_PARAMETERS
    #: What a TCP/TLS peer may hold: idle timeout of connections without a registration,
    #: TLS handshake timeout, connection caps per listener and per address. The caps are
    #: lowered at start to fit the process's open-files limit.
    tcp_limits: StreamLimits = DEFAULT_STREAM_LIMITS
    #: At start, check over loopback that every listener answers (a CSM on TCP, a
    #: ClientHello on TLS/DTLS, a ping on UDP) and fail start() if one does not.
    check_listeners: bool = True
    #: The DTLS server's limits: sessions, half-open handshakes in all and per source
    #: address (a new handshake replaces the oldest half-open one when all are taken).
    dtls_limits: DtlsServerConfig = DEFAULT_DTLS_SERVER_CONFIG
    #: Block1 reassembly budgets of each transport (bytes per transport, per registered or
    #: authenticated peer, per other peer); see ``aiolwm2m.coap.reassembly_limits``.
    reassembly: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS
    dtls_rpk: RpkCredentials | None = None
    dtls_x509: X509Credentials | None = None
    #: Where the SQLite database lives; ``store="memory"`` keeps nothing on disk.
    data_dir: Path = field(default_factory=lambda: Path("aiolwm2m-data"))
    #: "sqlite" (in data_dir), "memory", or Redis: ``redis://HOST:PORT[/DB]`` or
    #: ``redis+cluster://HOST:PORT`` (optionally ``?namespace=NAME``; see
    #: ``aiolwm2m.store.redis_keys`` for the layout and ``redis_writer`` for durability).
    store: str = "sqlite"
    #: ``FULL`` fsyncs every group commit; ``NORMAL`` survives a process crash but not a
    #: power cut, and is faster on slow disks.
    sqlite_synchronous: str = "FULL"
    #: This node's name when several server nodes share one Redis store (``aiolwm2m.cluster``:
    #: device ownership leases, REST requests routed to a device's node, events of every
    #: node on every node's SSE); needs a ``redis://`` or ``redis+cluster://`` store. None:
    #: a single server, which holds every registration of its store.
    node_id: str | None = None
    #: Heartbeat TTL, lease grace, routing timeout, sweep interval of those nodes.
    cluster: ClusterSettings = DEFAULT_CLUSTER_SETTINGS
    lwm2m_versions: frozenset[str] = frozenset({"1.0", "1.1"})
    default_lifetime: int = 86400
    min_lifetime: int = 1
    #: Most object and object-instance links one Register/Update may list (4.13 beyond).
    #: Gateways list an instance per child device (1,000 children with 8 objects each is
    #: 8,000); every registration's list is kept in memory and its parse costs ~3 ms per
    #: 1,000 entries, so 10,000 leaves room for big gateways while bounding both.
    max_objects_per_registration: int = 10_000
    #: Largest Register/Update object list in bytes (4.13 beyond): 10,000 links of
    #: ``</65535/65534>,`` with a few ``ver=`` take ~160 KiB.
    max_registration_payload: int = 256 * 1024
    #: End devices the server keeps behind one gateway (``/25`` instances beyond are
    #: refused, "gateway-too-many-end-devices"): each costs about a kilobyte here.
    max_end_devices_per_gateway: int = 10_000
    #: Object and instance links one end device's ``/25/x/3`` may list (it is refused
    #: beyond, "gateway-bad-device-objects"), as max_objects_per_registration for a client.
    max_end_device_objects: int = 1_000
    #: NoSec registrations are bound to the address they registered from: an Update or
    #: De-register from elsewhere gets 4.04 (whoever learnt /rd/{id} could otherwise move
    #: the registration to itself). True also takes a NoSec Update from a new address (same
    #: transport) when it names the registration's endpoint (``ep=``), for clients behind
    #: a NAT that rebinds their port; the name is then the only check, so leave it off
    #: unless such clients cannot simply register again.
    allow_address_change: bool = False
    #: How long a queue-mode client stays reachable after it last spoke (TS default:
    #: MAX_TRANSMIT_WAIT, 93 s).
    awake_time: float = 93.0
    #: How long a request for a sleeping client waits in the queue by default.
    queue_ttl: float = 86400.0
    #: How long finished queued requests stay retrievable by id.
    queue_result_retention: float = 3600.0
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    model_dirs: tuple[Path, ...] = ()
    #: Wall clock used for lifetimes and queue TTLs (persisted times must survive restarts).
    clock: Callable[[], float] = time.time
    #: Run the lifetime / queue timers as background tasks (tests drive them by hand).
    run_timers: bool = True
    #: Largest HTTP request body the REST API reads (413 above it); 2 MiB holds a 1 MiB
    #: Opaque value as base64 JSON (1 MiB is what our client takes block-wise by default).
    http_max_body: int = 2 << 20
    #: Largest raw body of ``POST /api/clients/{ep}/write-opaque`` (firmware images),
    #: held in memory while it is sent to the device.
    http_max_upload: int = 16 << 20
    #: Who may read ``/metrics``: "open", "loopback-or-token" (requests from 127.0.0.1/::1,
    #: or with an API token; behind a reverse proxy on the same host use "token") or "token".
    metrics_access: str = "loopback-or-token"
    #: How far a server-sent-events subscriber may fall behind (events and encoded bytes)
    #: before it is dropped with an ``event: dropped`` line; the buffer is shared by all.
    sse_max_events: int = 1000
    sse_max_bytes: int = 4 << 20
    #: Largest firmware image an upload may carry (413 above); images are streamed to disk
    #: and held in memory once while devices download them.
    firmware_max_image: int = 64 << 20
    #: Host name or address put in the Package URIs devices download firmware from; None
    #: uses the CoAP listener's address, or for a wildcard one the local address that
    #: routes to the device (set it behind a NAT or to use a DNS name).
    firmware_public_host: str | None = None
    #: The CoRE Resource Directory (RFC 9176, ``aiolwm2m.rd``) on every CoAP listener:
    #: registration of any CoAP endpoint at /rd beside LwM2M's, simple registration,
    #: lookups. False (``--no-rd``) leaves /rd to LwM2M alone, as before the RD existed.
    rd: bool = True
    #: What the RD lets peers make it hold and compute (links and bytes per registration,
    #: registrations in all and per unauthenticated address, lookup answers, observers).
    rd_limits: RdLimits = DEFAULT_RD_LIMITS
    #: The RD's authorisation policy (CRD-004, ``aiolwm2m.rd.policy``: who may register
    #: which ep/d, what lookups see). Given (the ``[rd_policy]`` table of the TOML), it is
    #: the policy at every start; None keeps the one last set through ``/api/rd/policy``
    #: (or the default: open, with names that have credentials bound to them).
    rd_policy: RdPolicy | None = None
    #: Device groups (``aiolwm2m.groups``): members per group, and how many requests a
    #: group operation has in flight at once unless it asks otherwise.
    group_limits: GroupLimits = DEFAULT_GROUP_LIMITS
    #: Where every value read, observed or sent is kept (``aiolwm2m.history``): "auto" (an
    #: SQLite file of its own, ``values.sqlite3``, with the SQLite store; the same Redis,
    #: a stream per device, with a Redis store; memory with the memory store), "sqlite",
    #: "memory" or "off".
    values_store: str = "auto"
    #: Retention of values: older than this many seconds they go (the latest value of a
    #: resource too), and beyond this many samples the earliest recorded go first.
    values_max_age: float = 7 * 86400.0
    values_max_samples: int = 1_000_000
    #: Values longer than this (an Opaque package read back, a long string) are not kept.
    values_max_value_bytes: int = 4096

    @property
    def database(self) -> Path:
        return self.data_dir / "aiolwm2m.sqlite3"
