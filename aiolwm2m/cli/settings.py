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
    #: PEM files: the server's raw public key pair (EC P-256) for RPK clients, and its
    #: certificate chain, private key and trust anchors for X.509 clients.
    rpk_key: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    trust_anchors: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    api_tokens: list[str] = field(default_factory=list)
    data_dir: Path = Path("aiolwm2m-data")
    store: str = "sqlite"
    lwm2m_versions: list[str] = field(default_factory=lambda: ["1.0", "1.1"])
    awake_time: float = 93.0
    queue_ttl: float = 86400.0
    model_dirs: list[Path] = field(default_factory=list)
    credentials: Path | None = None
    web_ui: bool = True
    log_level: str = "INFO"


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
    for port_name in ("coap_port", "coaps_port", "tcp_port", "tls_port", "bootstrap_port",
                      "http_port"):
        port = getattr(settings, port_name)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{port_name} {port} is outside 0..65535")
    return settings


def environment() -> Mapping[str, str]:
    return os.environ
