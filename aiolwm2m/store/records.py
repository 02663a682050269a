"""The records the stores keep. Plain, immutable, and serialisable to JSON-ready dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from aiolwm2m.principals import (
    PSK_PREFIX,
    legacy_psk_principal,
    psk_principal,
    rpk_principal,
    upgrade_legacy_principal,
    x509_principal,
)

from .fast_init import fast_frozen_init

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ObjectLinkEntry:
    """One entry of a registration's object list: ``</3/0>`` or ``</10>;ver=1.1``."""

    object_id: int
    instance_id: int | None = None
    version: str | None = None


@fast_frozen_init  # one is made per Register and per Update
@dataclass(frozen=True, slots=True)
class Registration:
    id: str
    endpoint: str
    address: Address
    lifetime: int
    lwm2m_version: str = "1.0"
    binding: str = "U"
    queue_mode: bool = False
    sms: str | None = None
    transport: str = "udp"
    identity: str | None = None
    links: str = ""
    objects: tuple[ObjectLinkEntry, ...] = ()
    root_path: str = "/"
    content_formats: tuple[int, ...] = ()
    registered_at: float = 0.0
    updated_at: float = 0.0
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def expires_at(self) -> float:
        return self.updated_at + self.lifetime

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def with_changes(self, **changes: Any) -> Registration:
        # What dataclasses.replace does, spelled out: an Update calls this once per request,
        # and replace() introspects the fields on every call.
        if not _REGISTRATION_FIELDS.issuperset(changes):
            raise TypeError(f"no such fields: {sorted(set(changes) - _REGISTRATION_FIELDS)}")
        get = changes.get
        return Registration(
            get("id", self.id), get("endpoint", self.endpoint), get("address", self.address),
            get("lifetime", self.lifetime), get("lwm2m_version", self.lwm2m_version),
            get("binding", self.binding), get("queue_mode", self.queue_mode),
            get("sms", self.sms), get("transport", self.transport),
            get("identity", self.identity), get("links", self.links),
            get("objects", self.objects), get("root_path", self.root_path),
            get("content_formats", self.content_formats),
            get("registered_at", self.registered_at), get("updated_at", self.updated_at),
            get("extra", self.extra))

    def object_version(self, object_id: int) -> str | None:
        for o in self.objects:
            if o.object_id == object_id and o.version is not None:
                return o.version
        return None


_REGISTRATION_FIELDS = frozenset(f.name for f in dataclass_fields(Registration))


# The object list of a registration is shared by every device of a kind (the server caches
# its parse), so its row form is computed once per distinct list. Keyed by identity: hashing
# the tuple would hash every entry on every write.
RegistrationObjectRows = tuple[tuple[int, int | None, str | None], ...]
RegistrationRow = tuple[Any, ...]
_OBJECT_ROWS: dict[int, tuple[tuple[ObjectLinkEntry, ...], RegistrationObjectRows]] = {}
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _object_rows(objects: tuple[ObjectLinkEntry, ...]) -> RegistrationObjectRows:
    cached = _OBJECT_ROWS.get(id(objects))
    if cached is not None and cached[0] is objects:
        return cached[1]
    if len(_OBJECT_ROWS) >= 4096:
        _OBJECT_ROWS.clear()
    rows = tuple((o.object_id, o.instance_id, o.version) for o in objects)
    _OBJECT_ROWS[id(objects)] = (objects, rows)
    return rows


#: The last element of a stored row: 2 since PSK principals are escaped one-to-one
#: (``aiolwm2m.principals``). Rows of earlier versions end with the object list instead.
REGISTRATION_ROW_FORMAT = 2
#: What an identity an earlier version stored becomes when its text fits several PSK
#: identities: no transport reports this prefix, so until the security store settles it
#: (``unsettled_legacy_identity``), nobody can act on the registration.
LEGACY_PSK_PREFIX = "psk-legacy:"


def registration_row(reg: Registration) -> RegistrationRow:
    """The positional form the SQLite store keeps, as plain tuples (``marshal``-able, and
    JSON-encoded by the writer process, off the event loop). The hot path of a Register,
    hence no dict."""
    return (reg.id, reg.endpoint, reg.address[0], reg.address[1], reg.lifetime,
            reg.lwm2m_version, reg.binding, reg.queue_mode, reg.sms, reg.transport,
            reg.identity, reg.links, reg.root_path, reg.content_formats, reg.registered_at,
            reg.updated_at, reg.extra, _object_rows(reg.objects), REGISTRATION_ROW_FORMAT)


def registration_to_json(reg: Registration) -> str:
    return _ENCODE(registration_row(reg))


def registration_from_json(text: str) -> Registration:
    """A stored row as a Registration. A row of an earlier version has its identity
    upgraded (``aiolwm2m.principals.upgrade_legacy_principal``), or, when its text is
    ambiguous, marked with ``LEGACY_PSK_PREFIX`` for the loader to settle."""
    row = json.loads(text)
    (rid, ep, host, port, lt, version, binding, queue, sms, transport, identity, links, root,
     ct, reg_at, upd_at, extra, objects) = row[:18]
    if len(row) == 18 and identity is not None:
        identity = (upgrade_legacy_principal(identity)
                    or LEGACY_PSK_PREFIX + identity[len(PSK_PREFIX):])
    return Registration(
        id=rid, endpoint=ep, address=(host, int(port)), lifetime=int(lt),
        lwm2m_version=version, binding=binding, queue_mode=bool(queue), sms=sms,
        transport=transport, identity=identity, links=links,
        objects=tuple(ObjectLinkEntry(o, i, v) for o, i, v in objects), root_path=root,
        content_formats=tuple(ct), registered_at=float(reg_at), updated_at=float(upd_at),
        extra=tuple((k, v) for k, v in extra))


def unsettled_legacy_identity(reg: Registration, credentials: SecurityInfo | None
                              ) -> str | None:
    """For a registration loaded with an ambiguous legacy identity (``LEGACY_PSK_PREFIX``):
    the principal of the endpoint's PSK credentials when an earlier version would have
    written exactly that text for them, else None (the registration cannot be trusted to
    anyone). Registrations without the mark come back unchanged."""
    identity = reg.identity
    if identity is None or not identity.startswith(LEGACY_PSK_PREFIX):
        return identity
    if credentials is None or credentials.psk_identity is None:
        return None
    written = PSK_PREFIX + identity[len(LEGACY_PSK_PREFIX):]
    if legacy_psk_principal(credentials.psk_identity) != written:
        return None
    return psk_principal(credentials.psk_identity)


@dataclass(frozen=True, slots=True)
class Observation:
    """An observation the server holds on a client's resource(s)."""

    token: bytes
    registration_id: str
    endpoint: str
    paths: tuple[str, ...]
    composite: bool = False
    #: The format the server asked for (Accept); None lets the client choose.
    content_format: int | None = None
    created_at: float = 0.0
    #: The format the client answered the Observe with: what its notifications carry.
    negotiated_format: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token.hex(), "reg": self.registration_id, "ep": self.endpoint,
                "paths": list(self.paths), "composite": self.composite,
                "ct": self.content_format, "at": self.created_at,
                "nct": self.negotiated_format}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observation:
        return cls(bytes.fromhex(d["token"]), d["reg"], d["ep"], tuple(d["paths"]),
                   bool(d["composite"]), d["ct"], float(d["at"]), d.get("nct"))


PENDING = "pending"
#: An at-most-once request being sent: recorded durably before it leaves, so that after a
#: crash it is reported as of unknown outcome instead of being sent again.
IN_FLIGHT = "in-flight"
DONE = "done"
EXPIRED = "expired"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request for a sleeping (queue-mode) client, kept until it wakes or its TTL ends.

    Delivery is at least once: a request the server was sending when it stopped is still
    pending after a restart and is sent again. With ``at_most_once`` it is marked
    IN_FLIGHT (durably) before it is sent, and one found IN_FLIGHT at a restart is FAILED
    with an unknown outcome instead."""

    id: str
    endpoint: str
    operation: dict[str, Any]
    created_at: float
    expires_at: float
    state: str = PENDING
    result: dict[str, Any] | None = None
    finished_at: float | None = None
    sequence: int = 0
    at_most_once: bool = False
    #: When it was marked IN_FLIGHT (at-most-once requests only).
    started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ep": self.endpoint, "op": self.operation,
                "created": self.created_at, "expires": self.expires_at, "state": self.state,
                "result": self.result, "finished": self.finished_at, "seq": self.sequence,
                "amo": self.at_most_once, "started": self.started_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueuedRequest:
        # "amo" and "started" are absent from rows of earlier versions.
        return cls(d["id"], d["ep"], d["op"], float(d["created"]), float(d["expires"]),
                   d["state"], d["result"], d["finished"], int(d["seq"]),
                   bool(d.get("amo", False)), d.get("started"))


PSK = "psk"
RPK = "rpk"
X509 = "x509"


@dataclass(frozen=True, slots=True)
class SecurityInfo:
    """The credentials one endpoint must present, in exactly one security mode."""

    endpoint: str
    psk_identity: bytes | None = None
    psk_key: bytes | None = None
    rpk_public_key: bytes | None = None
    x509_identity: str | None = None

    def __post_init__(self) -> None:
        modes = [m for m, present in ((PSK, self.psk_identity is not None),
                                      (RPK, self.rpk_public_key is not None),
                                      (X509, self.x509_identity is not None)) if present]
        if len(modes) != 1:
            raise ValueError(f"{self.endpoint}: exactly one of PSK, RPK or X.509 credentials "
                             f"is needed, got {modes or 'none'}")
        if self.psk_identity is not None and not self.psk_key:
            raise ValueError(f"{self.endpoint}: a PSK identity needs a key")

    @classmethod
    def from_text(cls, endpoint: str, *, psk_identity: str | None = None,
                  psk_key: str | None = None, rpk_public_key: str | None = None,
                  x509_identity: str | None = None) -> SecurityInfo:
        """Credentials as people write them (configuration files, the REST API): keys in
        hex. Raises ValueError saying which field is wrong."""

        def raw(name: str, text: str | None) -> bytes | None:
            if text is None:
                return None
            try:
                value = bytes.fromhex(text.strip())
            except ValueError:
                raise ValueError(f"{name} must be hex") from None
            if not value:
                raise ValueError(f"{name} is empty")
            return value

        return cls(endpoint,
                   psk_identity=psk_identity.encode() if psk_identity is not None else None,
                   psk_key=raw("psk_key", psk_key),
                   rpk_public_key=raw("rpk_public_key", rpk_public_key),
                   x509_identity=x509_identity)

    @property
    def mode(self) -> str:
        if self.psk_identity is not None:
            return PSK
        return RPK if self.rpk_public_key is not None else X509

    @property
    def principal(self) -> str:
        """What a transport reports for a peer holding these credentials
        (``PeerIdentity.key``)."""
        if self.psk_identity is not None:
            return psk_principal(self.psk_identity)
        if self.rpk_public_key is not None:
            return rpk_principal(self.rpk_public_key)
        return x509_principal(self.x509_identity or "")

    def to_dict(self) -> dict[str, Any]:
        return {"ep": self.endpoint,
                "psk_id": self.psk_identity.hex() if self.psk_identity is not None else None,
                "psk_key": self.psk_key.hex() if self.psk_key is not None else None,
                "rpk": self.rpk_public_key.hex() if self.rpk_public_key is not None else None,
                "x509": self.x509_identity}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SecurityInfo:
        def raw(key: str) -> bytes | None:
            v = d.get(key)
            return bytes.fromhex(v) if v is not None else None

        return cls(d["ep"], raw("psk_id"), raw("psk_key"), raw("rpk"), d.get("x509"))
