"""Settings of ``aiolwm2m server``: defaults < TOML file < environment < command-line flags.

The TOML file uses the same names as the flags (``coap_port = 5683``, ``http_port = 8080``,
``api_tokens = ["..."]``, ...); environment variables are the upper-case names prefixed with
``AIOLWM2M_`` (``AIOLWM2M_HTTP_PORT=9000``, lists comma-separated).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aiolwm2m.store.redis_keys import check_node_id
from aiolwm2m.store.selection import check_store


class SettingsError(Exception):
    """A one-line explanation of what is wrong with the configuration."""


@dataclass
class ServerSettings:
    coap_host: str = "::"
    coap_port: int = 5683
    coaps_port: int = 5684
    dtls: bool = True
    #: coap+tcp:// and coaps+tcp:// listeners (RFC 8323), on the TCP ports of the same
    #: numbers by default.
    tcp_port: int = 5683
    tls_port: int = 5684
    tcp: bool = True
    #: LwM2M over HTTP/2 (aiolwm2m.http2): off unless a port is given; https (TLS, ALPN h2)
    #: when certificate/private_key are set, else h2c. Its limits: largest request body,
    #: concurrent streams per connection (ServerConfig.http2_limits).
    http2_port: int | None = None
    http2_max_body: int = 1 << 20
    http2_max_concurrent_streams: int = 32
    #: The Bootstrap-Server, in the same process and database (its configurations are managed
    #: through the REST API and the web UI).
    bootstrap: bool = True
    bootstrap_port: int = 5783
    #: Its coaps:// (DTLS) listener, where devices authenticate with the
    #: bootstrap_credentials of their configuration (PSK; RPK and X.509 with rpk_key /
    #: certificate below). Without it, configurations cannot carry bootstrap credentials.
    bootstrap_coaps_port: int = 5784
    bootstrap_dtls: bool = True
    #: PEM files: the server's raw public key pair (EC P-256) for RPK clients, and its
    #: certificate chain, private key and trust anchors for X.509 clients.
    rpk_key: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    trust_anchors: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    #: PEM certificate chain and private key: the REST API, web UI and firmware downloads
    #: over HTTPS (devices then pull over https://) instead of plain HTTP.
    http_certificate: Path | None = None
    http_private_key: Path | None = None
    api_tokens: list[str] = field(default_factory=list)
    #: REST API limits (ServerConfig.http_max_body, http_max_upload, metrics_access).
    http_max_body: int = 2 << 20
    http_max_upload: int = 16 << 20
    metrics_access: str = "loopback-or-token"
    #: Firmware: largest image upload, and the host Package URIs name ("": the local
    #: address that routes to each device) (ServerConfig.firmware_max_image, _public_host).
    firmware_max_image: int = 64 << 20
    firmware_public_host: str = ""
    data_dir: Path = Path("aiolwm2m-data")
    #: sqlite, memory, redis://HOST:PORT or redis+cluster://HOST:PORT (ServerConfig.store).
    store: str = "sqlite"
    #: This node's name among several sharing one Redis store ("": a single server), how
    #: long a silent node counts as alive, and how long a routed REST request may wait for
    #: the device's node (ServerConfig.node_id, cluster.node_ttl, cluster.route_timeout).
    node_id: str = ""
    cluster_node_ttl: float = 10.0
    cluster_route_timeout: float = 100.0
    lwm2m_versions: list[str] = field(default_factory=lambda: ["1.0", "1.1"])
    awake_time: float = 93.0
    queue_ttl: float = 86400.0
    #: Take a NoSec Update from a new address when it names its endpoint (ep=): for clients
    #: behind a NAT that rebinds (ServerConfig.allow_address_change).
    allow_address_change: bool = False
    model_dirs: list[Path] = field(default_factory=list)
    credentials: Path | None = None
    web_ui: bool = True
    log_level: str = "INFO"
    #: "auto" (uvloop when installed), "uvloop" or "asyncio" (AIOLWM2M_EVENT_LOOP).
    event_loop: str = "auto"
    #: Exhaustion limits of the coap+tcp/coaps+tcp listeners (StreamLimits, and the frame
    #: timeout of TcpParameters), in seconds and connections; 0 turns one off.
    tcp_idle_timeout: float = 60.0
    tcp_frame_timeout: float = 30.0
    tls_handshake_timeout: float = 15.0
    tcp_max_connections: int = 10_000
    tcp_max_connections_per_address: int = 256
    #: Block1 reassembly memory of each transport, in bytes: in all, per registered or
    #: DTLS-authenticated peer, per other peer (ServerConfig.reassembly). Raise the last
    #: for gateways whose Register lists more than some 10,000 object instances.
    reassembly_budget: int = 16 << 20
    reassembly_peer_budget: int = 1 << 20
    reassembly_unregistered_budget: int = 256 << 10
    #: DTLS handshakes in progress (cookie verified, not finished), in all and per source
    #: address; at the first limit the oldest gives way (ServerConfig.dtls_limits).
    dtls_max_handshakes: int = 512
    dtls_handshakes_per_address: int = 8
    #: Register/Update object lists: most object and instance links, and largest size in
    #: bytes, 4.13 beyond (ServerConfig.max_objects_per_registration,
    #: max_registration_payload). Raise both for big gateways (and the reassembly budgets).
    max_objects_per_registration: int = 10_000
    max_registration_payload: int = 256 << 10
    #: Gateways (Object 25): end devices kept behind one gateway, and object links one end
    #: device may list (ServerConfig.max_end_devices_per_gateway, max_end_device_objects).
    #: A gateway of more end devices needs max_objects_per_registration raised too.
    max_end_devices_per_gateway: int = 10_000
    max_end_device_objects: int = 1_000
    #: The Resource Directory (RFC 9176) on the CoAP listeners (ServerConfig.rd; off with
    #: --no-rd), and its limits (ServerConfig.rd_limits): links and bytes per registration,
    #: registrations in all and per unauthenticated IP address (0: no per-address limit),
    #: links per lookup answer.
    rd: bool = True
    rd_max_links: int = 1000
    rd_max_registration_bytes: int = 64 << 10
    rd_max_registrations: int = 200_000
    rd_max_registrations_per_address: int = 100
    rd_max_lookup_results: int = 256
    #: The RD's authorisation policy (ServerConfig.rd_policy; aiolwm2m/rd/policy.py): a
    #: table in the TOML file ([rd_policy], or [server.rd_policy]), or the path of a TOML
    #: or JSON file holding one (--rd-policy FILE, AIOLWM2M_RD_POLICY=FILE). Absent: the
    #: policy last set through /api/rd/policy, or the default.
    rd_policy: dict[str, Any] | None = None
    #: Device groups (ServerConfig.group_limits): members one group may have, and the
    #: requests a group operation has in flight at once by default.
    group_max_members: int = 100_000
    group_concurrency: int = 64
    #: Every value read, observed or sent is kept (ServerConfig.values_store, _max_age,
    #: _max_samples): auto (values.sqlite3 in data_dir with the SQLite store, memory
    #: otherwise), sqlite, memory or off; retention in seconds and in samples.
    values_store: str = "auto"
    values_max_age: float = 7 * 86400.0
    values_max_samples: int = 1_000_000
    #: The pub/sub broker (aiolwm2m.pubsub): embedded on this UDP port of coap_host, in the
    #: same data_dir and store, refusals counted with the server's (off unless a port is
    #: given); or read over CoAP from broker_uri (say a gateway's). The REST API
    #: (/api/broker) and the web UI show its topics. broker_rd: an RD it announces itself to.
    broker_port: int | None = None
    broker_uri: str | None = None
    broker_rd: str | None = None
    #: Its limits (BrokerLimits; see aiolwm2m/pubsub/limits.py).
    broker_max_topics: int = 10_000
    broker_max_topics_per_address: int = 1_000
    broker_max_value_size: int = 8 << 10
    broker_max_subscribers_per_topic: int = 1_000
    broker_max_subscribers: int = 100_000
    broker_max_subscribers_per_address: int = 1_000
    broker_publish_rate: float = 10.0
    broker_publish_burst: int = 20
    #: NIDD through a SCEF (aiolwm2m.nidd; ServerConfig.scef_url and .nidd), off unless
    #: scef (the T8 API root) is given: this server's SCS/AS id and bearer token there, the
    #: base URL the SCEF posts notifications to (default http://<http_host>:<http_port>),
    #: the devices ("EXTID" or "EXTID=ENDPOINT") and groups it serves, the time to live of
    #: downlink data (s), the largest callback body, and OSR-001's application id with the
    #: RDS port pair ("UE:SCEF", 0..15 each) this server is reached at.
    scef: str | None = None
    scef_scs_as_id: str = "aiolwm2m"
    scef_token: str | None = None
    scef_callback_url: str | None = None
    nidd_devices: list[str] = field(default_factory=list)
    nidd_groups: list[str] = field(default_factory=list)
    nidd_ttl: float = 3600.0
    nidd_max_callback_body: int = 64 << 10
    nidd_app_id: str | None = None
    nidd_rds_ports: str | None = None


_FIELDS = {f.name: f for f in fields(ServerSettings)}


def _convert(name: str, value: Any, origin: str) -> Any:
    """Coerce a TOML or environment value to the field's type, with a precise error."""
    default = getattr(ServerSettings(), name)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"{value!r} is not a boolean")
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, int) and not isinstance(default, bool):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            items = value.split(",") if isinstance(value, str) else list(value)
            items = [str(i).strip() for i in items if str(i).strip()]
            return [Path(i) for i in items] if name == "model_dirs" else items
        if name == "broker_port":
            return int(value) if value not in (None, "") else None
        if name in ("broker_uri", "broker_rd"):
            return str(value) or None
        if name == "http2_port":
            return int(value) if value not in (None, "") else None
        if name == "rd_policy":
            return _rd_policy(value, origin)
        if name in ("data_dir", "credentials", "rpk_key", "certificate", "private_key",
                    "trust_anchors", "http_certificate", "http_private_key"):
            return Path(value) if value not in (None, "") else None
        return str(value)
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{origin}: {name} = {value!r}: {e}") from None


def _rd_policy(value: Any, origin: str) -> dict[str, Any] | None:
    """The policy table itself (TOML), or a TOML/JSON file holding it; checked here so
    that a wrong policy stops the server at start with the reason."""
    from aiolwm2m.rd.policy import PolicyError, parse_policy

    if value in (None, ""):
        return None
    if isinstance(value, str):
        path = Path(value)
        try:
            text = path.read_text()
        except OSError as e:
            raise SettingsError(f"{origin}: cannot read RD policy file {path}: "
                                f"{e.strerror or e}") from None
        try:
            value = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(f"{origin}: RD policy file {path} is not valid: {e}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{origin}: rd_policy must be a table or a file name")
    try:
        parse_policy(value)
    except PolicyError as e:
        raise SettingsError(f"{origin}: rd_policy: {e}") from None
    return value


def load_settings(config_file: Path | None, environ: Mapping[str, str],
                  overrides: Mapping[str, Any]) -> ServerSettings:
    settings = ServerSettings()
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except OSError as e:
            raise SettingsError(f"cannot read config file {config_file}: "
                                f"{e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"config file {config_file} is not valid TOML: {e}") from None
        section = data.get("server", data)
        for key, value in section.items():
            if key not in _FIELDS:
                raise SettingsError(f"config file {config_file}: unknown setting {key!r}")
            setattr(settings, key, _convert(key, value, f"config file {config_file}"))
    for name in _FIELDS:
        env_name = f"AIOLWM2M_{name.upper()}"
        if env_name in environ:
            setattr(settings, name, _convert(name, environ[env_name], env_name))
    for name, value in overrides.items():
        if value is not None:
            setattr(settings, name, _convert(name, value, f"--{name.replace('_', '-')}"))
    try:
        check_store(settings.store)
    except ValueError as e:
        raise SettingsError(f"store: {e}") from None
    if settings.node_id:
        try:
            check_node_id(settings.node_id)
        except ValueError as e:
            raise SettingsError(f"node_id: {e}") from None
        if settings.store in ("sqlite", "memory"):
            raise SettingsError("node_id: several nodes share a Redis store; use --store "
                                "redis://HOST:PORT or redis+cluster://HOST:PORT")
    if settings.cluster_node_ttl <= 0 or settings.cluster_route_timeout <= 0:
        raise SettingsError("cluster_node_ttl and cluster_route_timeout must be positive")
    from aiolwm2m.web.request_gate import METRICS_ACCESS  # here: the web stack is heavy
    if settings.metrics_access not in METRICS_ACCESS:
        raise SettingsError(f"metrics_access must be one of {', '.join(METRICS_ACCESS)}, "
                            f"not {settings.metrics_access!r}")
    for size in ("http_max_body", "http_max_upload", "firmware_max_image"):
        if getattr(settings, size) < 1024:
            raise SettingsError(f"{size} must be at least 1024 bytes")
    for port_name in ("coap_port", "coaps_port", "tcp_port", "tls_port", "bootstrap_port",
                      "bootstrap_coaps_port",
                      "http_port"):
        port = getattr(settings, port_name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{port_name} {port} is outside 0..65535")
    if (settings.http_certificate is None) != (settings.http_private_key is None):
        raise SettingsError("http_certificate and http_private_key go together (HTTPS needs "
                            "both)")
    if settings.broker_port is not None and not 0 <= settings.broker_port <= 65535:
        raise SettingsError(f"broker_port {settings.broker_port} is outside 0..65535")
    if settings.http2_port is not None and not 0 <= settings.http2_port <= 65535:
        raise SettingsError(f"http2_port {settings.http2_port} is outside 0..65535")
    if settings.http2_max_body < 1024:
        raise SettingsError("http2_max_body must be at least 1024 bytes")
    if settings.http2_max_concurrent_streams < 2:
        raise SettingsError("http2_max_concurrent_streams must be at least 2 (the downlink "
                            "stream and one request)")
    if settings.event_loop not in ("auto", "uvloop", "asyncio"):
        raise SettingsError(f"event_loop must be auto, uvloop or asyncio, not "
                            f"{settings.event_loop!r}")
    for limit in ("tcp_idle_timeout", "tcp_frame_timeout", "tls_handshake_timeout",
                  "tcp_max_connections", "tcp_max_connections_per_address"):
        if getattr(settings, limit) < 0:
            raise SettingsError(f"{limit} must not be negative (0 turns it off)")
    for budget in ("reassembly_budget", "reassembly_peer_budget",
                   "reassembly_unregistered_budget"):
        if getattr(settings, budget) < 1024:
            raise SettingsError(f"{budget} must be at least 1024 bytes (one block)")
    for count in ("dtls_max_handshakes", "dtls_handshakes_per_address",
                  "max_objects_per_registration", "max_end_devices_per_gateway",
                  "max_end_device_objects"):
        if getattr(settings, count) < 1:
            raise SettingsError(f"{count} must be at least 1")
    if settings.max_registration_payload < 64:
        raise SettingsError("max_registration_payload must be at least 64 bytes")
    for count in ("rd_max_links", "rd_max_registrations", "rd_max_lookup_results"):
        if getattr(settings, count) < 1:
            raise SettingsError(f"{count} must be at least 1")
    if settings.rd_max_registration_bytes < 64:
        raise SettingsError("rd_max_registration_bytes must be at least 64 bytes")
    for count in ("group_max_members", "group_concurrency"):
        if getattr(settings, count) < 1:
            raise SettingsError(f"{count} must be at least 1")
    from aiolwm2m.history.selection import VALUE_STORES

    if settings.values_store not in VALUE_STORES:
        raise SettingsError(f"values_store must be one of {', '.join(VALUE_STORES)}, not "
                            f"{settings.values_store!r}")
    if settings.values_max_age <= 0 or settings.values_max_samples < 1:
        raise SettingsError("values_max_age must be positive and values_max_samples at "
                            "least 1")
    if settings.rd_max_registrations_per_address < 0:
        raise SettingsError("rd_max_registrations_per_address must not be negative (0 "
                            "turns it off)")
    return settings


def environment() -> Mapping[str, str]:
    return os.environ
