"""What the bootstrap server writes into a client: per-endpoint configurations.

An :class:`EndpointConfig` lists Security instances (object 0: server URI, security mode and
credentials), Server instances (object 1), Access Control instances (object 2), any other
instance values to write, and the paths to Bootstrap-Delete first. Configurations come from
the Python API or a TOML / JSON file::

    [endpoints."*"]                  # the default for endpoints without their own entry
    delete = ["/0", "/1"]

    [[endpoints."*".security]]
    instance_id = 1
    server_uri = "coap://lwm2m.example:5683"
    security_mode = "psk"            # psk | rpk | x509 | nosec | est (or 0..4)
    public_key_or_identity = "text:device-1"
    secret_key = "00112233445566778899aabbccddeeff"   # hex, or "text:..."
    short_server_id = 1

    [[endpoints."*".servers]]
    instance_id = 0
    short_server_id = 1
    lifetime = 300
    binding = "U"

    [endpoints."dev-1".bootstrap_credentials]   # how dev-1 must authenticate to us
    psk_identity = "text:dev-1"                 # or rpk_public_key (hex DER) / x509_identity
    psk_key = "000102030405060708090a0b0c0d0e0f"

Security instances may also give ``sni`` and ``certificate_usage`` (0-3, resource 15);
``server_public_key`` is the server's SubjectPublicKeyInfo (RPK) or the certificate the
usage names (DER, hex). Bootstrap credentials belong to one endpoint, never to ``"*"``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiolwm2m.coap.uri import UriError, parse_uri
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.store.records import SecurityInfo

from .credentials import AccountCredentials, BootstrapCredentials, CredentialsError

DEFAULT_ENDPOINT = "*"
SECURITY_MODES = {"psk": 0, "rpk": 1, "x509": 2, "certificate": 2, "nosec": 3, "est": 4}


class ConfigurationError(ValueError):
    """A bootstrap configuration is malformed; the message names the field."""


class ConfigurationConflict(ConfigurationError):
    """A well-formed configuration that clashes with the state around it: credentials that
    belong to another endpoint, or bootstrap credentials no listener could check. The REST
    API answers 409 for it, 400 for other configuration errors."""


def bytes_value(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(f"{what}: expected hex text or 'text:...', got {value!r}")
    if value.startswith("text:"):
        return value[5:].encode("utf-8")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigurationError(f"{what}: {value!r} is not hex (use 'text:...' for text)"
                                 ) from None


def _bytes_text(value: bytes) -> str:
    return value.hex()


def _mode(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
        return value
    if isinstance(value, str) and value.lower() in SECURITY_MODES:
        return SECURITY_MODES[value.lower()]
    raise ConfigurationError(f"security_mode {value!r} is not one of "
                             f"{', '.join(SECURITY_MODES)} or 0..4")


def _int(d: Mapping[str, Any], key: str, what: str, default: int | None = None) -> int | None:
    value = d.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{what}.{key}: {value!r} is not an integer")
    return value


def check_known(d: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = set(d) - set(allowed)
    if unknown:
        raise ConfigurationError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """One Security (object 0) instance: a server account's URI and credentials."""

    instance_id: int
    server_uri: str
    bootstrap_server: bool = False
    security_mode: int = 3
    public_key_or_identity: bytes = b""
    server_public_key: bytes = b""
    secret_key: bytes = b""
    short_server_id: int | None = None
    client_hold_off_time: int | None = None
    bootstrap_account_timeout: int | None = None
    sni: str | None = None
    #: Resource 15 (0-3, RFC 6698 usages); the client assumes 3 when it is absent.
    certificate_usage: int | None = None

    @classmethod
    def for_account(cls, instance_id: int, server_uri: str, short_server_id: int,
                    credentials: AccountCredentials) -> SecurityConfig:
        """An LwM2M server account's Security instance carrying ``credentials``."""
        return cls(instance_id, server_uri, short_server_id=short_server_id,
                   **credentials.resource_values())

    def values(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: self.server_uri, 1: self.bootstrap_server,
                               2: self.security_mode, 3: self.public_key_or_identity,
                               4: self.server_public_key, 5: self.secret_key}
        for rid, value in ((10, self.short_server_id), (11, self.client_hold_off_time),
                           (12, self.bootstrap_account_timeout), (14, self.sni),
                           (15, self.certificate_usage)):
            if value is not None:
                out[rid] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"instance_id": self.instance_id, "server_uri": self.server_uri,
                             "bootstrap_server": self.bootstrap_server,
                             "security_mode": self.security_mode}
        for name in ("public_key_or_identity", "server_public_key", "secret_key"):
            value = getattr(self, name)
            if value:
                d[name] = _bytes_text(value)
        for name in ("short_server_id", "client_hold_off_time", "bootstrap_account_timeout",
                     "sni", "certificate_usage"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "security") -> SecurityConfig:
        check_known(d, ("instance_id", "server_uri", "bootstrap_server", "security_mode",
                   "public_key_or_identity", "server_public_key", "secret_key",
                   "short_server_id", "client_hold_off_time", "bootstrap_account_timeout",
                   "sni", "certificate_usage"), what)
        uri = d.get("server_uri")
        if not isinstance(uri, str) or not uri:
            raise ConfigurationError(f"{what}.server_uri is required")
        iid = _int(d, "instance_id", what)
        if iid is None:
            raise ConfigurationError(f"{what}.instance_id is required")
        bs = bool(d.get("bootstrap_server", False))
        ssid = _int(d, "short_server_id", what)
        if not bs and ssid is None:
            raise ConfigurationError(f"{what}.short_server_id is required for an LwM2M "
                                     "server account")
        sni = d.get("sni")
        usage = _int(d, "certificate_usage", what)
        if usage is not None and not 0 <= usage <= 3:
            raise ConfigurationError(f"{what}.certificate_usage {usage} is outside 0..3")
        return cls(iid, uri, bs, _mode(d.get("security_mode", 3)),
                   bytes_value(d.get("public_key_or_identity", b""),
                               f"{what}.public_key_or_identity"),
                   bytes_value(d.get("server_public_key", b""), f"{what}.server_public_key"),
                   bytes_value(d.get("secret_key", b""), f"{what}.secret_key"), ssid,
                   _int(d, "client_hold_off_time", what),
                   _int(d, "bootstrap_account_timeout", what),
                   str(sni) if sni is not None else None, usage)


@dataclass(frozen=True, slots=True)
class ServerAccountConfig:
    """One Server (object 1) instance."""

    instance_id: int
    short_server_id: int
    lifetime: int = 86400
    binding: str = "U"
    default_min_period: int | None = None
    default_max_period: int | None = None
    disable_timeout: int | None = None
    notification_storing: bool = True
    mute_send: bool | None = None
    bootstrap_on_registration_failure: bool | None = None

    def values(self) -> dict[int, Any]:
        out: dict[int, Any] = {0: self.short_server_id, 1: self.lifetime,
                               6: self.notification_storing, 7: self.binding}
        for rid, value in ((2, self.default_min_period), (3, self.default_max_period),
                           (5, self.disable_timeout), (16,
                                                       self.bootstrap_on_registration_failure),
                           (23, self.mute_send)):
            if value is not None:
                out[rid] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (
            ("instance_id", self.instance_id), ("short_server_id", self.short_server_id),
            ("lifetime", self.lifetime), ("binding", self.binding),
            ("default_min_period", self.default_min_period),
            ("default_max_period", self.default_max_period),
            ("disable_timeout", self.disable_timeout),
            ("notification_storing", self.notification_storing),
            ("mute_send", self.mute_send),
            ("bootstrap_on_registration_failure", self.bootstrap_on_registration_failure),
        ) if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "servers") -> ServerAccountConfig:
        check_known(d, ("instance_id", "short_server_id", "lifetime", "binding",
                   "default_min_period", "default_max_period", "disable_timeout",
                   "notification_storing", "mute_send", "bootstrap_on_registration_failure"),
               what)
        iid, ssid = _int(d, "instance_id", what), _int(d, "short_server_id", what)
        if iid is None or ssid is None:
            raise ConfigurationError(f"{what}: instance_id and short_server_id are required")
        if not 1 <= ssid <= 65534:
            raise ConfigurationError(f"{what}.short_server_id {ssid} is outside 1..65534")
        lifetime = _int(d, "lifetime", what, 86400)
        assert lifetime is not None
        if lifetime <= 0:
            raise ConfigurationError(f"{what}.lifetime must be positive")
        mute = d.get("mute_send")
        bof = d.get("bootstrap_on_registration_failure")
        return cls(iid, ssid, lifetime, str(d.get("binding", "U")),
                   _int(d, "default_min_period", what), _int(d, "default_max_period", what),
                   _int(d, "disable_timeout", what), bool(d.get("notification_storing", True)),
                   None if mute is None else bool(mute), None if bof is None else bool(bof))


@dataclass(frozen=True, slots=True)
class AclConfig:
    """One Access Control (object 2) instance: rights of each server on one instance."""

    instance_id: int
    object_id: int
    object_instance_id: int
    owner: int
    acl: Mapping[int, int] = field(default_factory=dict)

    def values(self) -> dict[int, Any]:
        return {0: self.object_id, 1: self.object_instance_id, 2: dict(self.acl),
                3: self.owner}

    def to_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "object_id": self.object_id,
                "object_instance_id": self.object_instance_id, "owner": self.owner,
                "acl": {str(k): v for k, v in self.acl.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "acls") -> AclConfig:
        check_known(d, ("instance_id", "object_id", "object_instance_id", "owner", "acl"),
                    what)
        iid, oid, target, owner = (_int(d, k, what) for k in (
            "instance_id", "object_id", "object_instance_id", "owner"))
        if iid is None or oid is None or target is None or owner is None:
            raise ConfigurationError(f"{what}: instance_id, object_id, object_instance_id "
                                     "and owner are required")
        raw = d.get("acl", {})
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{what}.acl maps Short Server IDs to rights")
        try:
            acl = {int(k): int(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            raise ConfigurationError(f"{what}.acl: ids and rights are integers") from None
        return cls(iid, oid, target, owner, acl)


@dataclass(frozen=True, slots=True)
class InstanceWrite:
    """Values for any other object instance: ``{"path": "/3303/0", "values": {...}}``."""

    path: LwM2MPath
    values: Mapping[int, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "values": {str(k): _plain(v)
                                                   for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "writes") -> InstanceWrite:
        check_known(d, ("path", "values"), what)
        try:
            path = LwM2MPath.parse(str(d.get("path")))
        except ValueError as e:
            raise ConfigurationError(f"{what}.path: {e}") from None
        if len(path) != 2:
            raise ConfigurationError(f"{what}.path must name an object instance")
        values = d.get("values", {})
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"{what}.values maps resource ids to values")
        return cls(path, {int(k): v for k, v in values.items()})


def _plain(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Everything the bootstrap server writes into one client, in the order it writes it."""

    security: tuple[SecurityConfig, ...] = ()
    servers: tuple[ServerAccountConfig, ...] = ()
    acls: tuple[AclConfig, ...] = ()
    writes: tuple[InstanceWrite, ...] = ()
    delete: tuple[LwM2MPath, ...] = (LwM2MPath(0), LwM2MPath(1))
    discover: bool = False
    content_format: int | None = None
    #: How this endpoint must authenticate to the Bootstrap-Server (None: as the security
    #: store says, or NoSec when it has nothing for the endpoint either).
    bootstrap_credentials: BootstrapCredentials | None = None

    def __post_init__(self) -> None:
        ssids = {s.short_server_id for s in self.servers}
        for sec in self.security:
            if not sec.bootstrap_server and sec.short_server_id not in ssids:
                raise ConfigurationError(f"security instance {sec.instance_id} names server "
                                         f"{sec.short_server_id}, which has no server entry")
        for kind, items in (("security", self.security), ("servers", self.servers),
                            ("acls", self.acls)):
            iids = [i.instance_id for i in items]
            if len(iids) != len(set(iids)):
                raise ConfigurationError(f"{kind}: instance ids repeat")

    @classmethod
    def for_server(cls, uri: str, short_server_id: int = 1, *, lifetime: int = 300,
                   binding: str | None = None, security_instance: int = 1,
                   security: AccountCredentials | SecurityInfo | None = None,
                   bootstrap_credentials: BootstrapCredentials | None = None, **server: Any
                   ) -> EndpointConfig:
        """The common case: one LwM2M server account. NoSec without ``security``; else the
        account's credentials, as :class:`AccountCredentials` or, for a PSK, the
        :class:`SecurityInfo` the LwM2M server's security store holds for the endpoint
        (RPK and X.509 entries lack the private parts: use
        ``AccountCredentials.from_security_info``). ``binding`` defaults to the URI's
        transport: T for coap+tcp:// and coaps+tcp://, else U."""
        try:
            parsed = parse_uri(uri)
        except UriError as e:
            raise ConfigurationError(f"server URI: {e}") from None
        if binding is None:
            binding = "T" if parsed.reliable else "U"
        if isinstance(security, SecurityInfo):
            try:
                security = AccountCredentials.from_security_info(security)
            except CredentialsError as e:
                raise ConfigurationError(str(e)) from None
        if security is None or security.mode == 3:
            if parsed.secure:
                raise ConfigurationError(f"{uri} needs credentials (security=...)")
            sec = SecurityConfig(security_instance, uri, short_server_id=short_server_id)
        else:
            if not parsed.secure:
                raise ConfigurationError(f"{security.mode_name} credentials need a coaps:// "
                                         f"or coaps+tcp:// URI, not {uri}")
            sec = SecurityConfig.for_account(security_instance, uri, short_server_id, security)
        return cls((sec,), (ServerAccountConfig(0, short_server_id, lifetime, binding,
                                                **server),),
                   bootstrap_credentials=bootstrap_credentials)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "security": [s.to_dict() for s in self.security],
            "servers": [s.to_dict() for s in self.servers],
            "acls": [a.to_dict() for a in self.acls],
            "writes": [w.to_dict() for w in self.writes],
            "delete": [str(p) for p in self.delete],
            "discover": self.discover,
        }
        if self.content_format is not None:
            d["content_format"] = self.content_format
        if self.bootstrap_credentials is not None:
            d["bootstrap_credentials"] = self.bootstrap_credentials.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], what: str = "endpoint") -> EndpointConfig:
        check_known(d, ("security", "servers", "acls", "writes", "delete", "discover",
                        "content_format", "bootstrap_credentials"), what)

        def items(key: str) -> list[Mapping[str, Any]]:
            value = d.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise ConfigurationError(f"{what}.{key} must be a list of tables")
            return value

        try:
            delete = tuple(LwM2MPath.parse(str(p)) for p in d.get("delete", ["/0", "/1"]))
        except ValueError as e:
            raise ConfigurationError(f"{what}.delete: {e}") from None
        cf = d.get("content_format")
        creds = d.get("bootstrap_credentials")
        if creds is not None and not isinstance(creds, Mapping):
            raise ConfigurationError(f"{what}.bootstrap_credentials must be a table")
        return cls(
            tuple(SecurityConfig.from_dict(s, f"{what}.security[{i}]")
                  for i, s in enumerate(items("security"))),
            tuple(ServerAccountConfig.from_dict(s, f"{what}.servers[{i}]")
                  for i, s in enumerate(items("servers"))),
            tuple(AclConfig.from_dict(a, f"{what}.acls[{i}]")
                  for i, a in enumerate(items("acls"))),
            tuple(InstanceWrite.from_dict(w, f"{what}.writes[{i}]")
                  for i, w in enumerate(items("writes"))),
            delete, bool(d.get("discover", False)), int(cf) if cf is not None else None,
            bootstrap_credentials_from_dict(creds, f"{what}.bootstrap_credentials")
            if creds is not None else None)


def bootstrap_credentials_from_dict(d: Mapping[str, Any], what: str = "bootstrap_credentials"
                                    ) -> BootstrapCredentials:
    check_known(d, ("psk_identity", "psk_key", "rpk_public_key", "x509_identity"), what)

    def raw(key: str) -> bytes | None:
        value = d.get(key)
        return None if value is None else bytes_value(value, f"{what}.{key}")

    name = d.get("x509_identity")
    try:
        return BootstrapCredentials(raw("psk_identity"), raw("psk_key"), raw("rpk_public_key"),
                                    None if name is None else str(name))
    except CredentialsError as e:
        raise ConfigurationError(f"{what}: {e}") from None


def load_config_file(path: str | Path) -> dict[str, EndpointConfig]:
    """Read ``{"endpoints": {name: {...}}}`` from a ``.toml`` or ``.json`` file."""
    p = Path(path)
    try:
        raw: Any
        if p.suffix.lower() == ".toml":
            raw = tomllib.loads(p.read_text("utf-8"))
        else:
            raw = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"{p}: {e}") from None
    endpoints = raw.get("endpoints") if isinstance(raw, Mapping) else None
    if not isinstance(endpoints, Mapping):
        raise ConfigurationError(f"{p}: expected an 'endpoints' table")
    return {str(name): EndpointConfig.from_dict(cfg, f"endpoints.{name}")
            for name, cfg in endpoints.items()}
