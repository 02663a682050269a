"""Settings of ``aiolwm2m server``: defaults < TOML file < environment < command-line flags.

The TOML file uses the same names as the flags (``coap_port = 5683``, ``http_port = 8080``,
``api_tokens = ["..."]``, ...); environment variables are the upper-case names prefixed with
``AIOLWM2M_`` (``AIOLWM2M_HTTP_PORT=9000``, lists comma-separated).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


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
    api_tokens: list[str] = field(default_factory=list)
    #: REST API limits (ServerConfig.http_max_body, http_max_upload, metrics_access).
    http_max_body: int = 2 << 20
    http_max_upload: int = 16 << 20
    metrics_access: str = "loopback-or-token"
    data_dir: Path = Path("aiolwm2m-data")
    store: str = "sqlite"
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
        if name in ("data_dir", "credentials", "rpk_key", "certificate", "private_key",
                    "trust_anchors"):
            return Path(value) if value not in (None, "") else None
        return str(value)
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{origin}: {name} = {value!r}: {e}") from None


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
    if settings.store not in ("sqlite", "memory"):
        raise SettingsError(f"store must be sqlite or memory, not {settings.store!r}")
    from aiolwm2m.web.request_gate import METRICS_ACCESS  # here: the web stack is heavy
    if settings.metrics_access not in METRICS_ACCESS:
        raise SettingsError(f"metrics_access must be one of {', '.join(METRICS_ACCESS)}, "
                            f"not {settings.metrics_access!r}")
    for size in ("http_max_body", "http_max_upload"):
        if getattr(settings, size) < 1024:
            raise SettingsError(f"{size} must be at least 1024 bytes")
    for port_name in ("coap_port", "coaps_port", "tcp_port", "tls_port", "bootstrap_port",
                      "bootstrap_coaps_port",
                      "http_port"):
        port = getattr(settings, port_name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{port_name} {port} is outside 0..65535")
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
                  "max_objects_per_registration"):
        if getattr(settings, count) < 1:
            raise SettingsError(f"{count} must be at least 1")
    if settings.max_registration_payload < 64:
        raise SettingsError("max_registration_payload must be at least 64 bytes")
    return settings


def environment() -> Mapping[str, str]:
    return os.environ
