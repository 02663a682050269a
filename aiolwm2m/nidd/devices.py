"""Which devices and groups the server reaches through the SCEF, and how (the NIDD
directory).

A device is named by what the network knows it by: its External Identifier
(``local@domain``, LPW-001) or its MSISDN. That identifier is the device's identity, as a
PSK identity is over DTLS: a registration over NIDD is bound to it (``nidd:<identifier>``),
and a device entry that names an endpoint makes it the only one that identifier may register
(and the only way that endpoint may register). A group (``externalGroupId``) is served by
one configuration whose members register under whatever endpoint names they have, each
bound to its own identifier from its first registration on.

Each entry may carry its own time to live for downlink data and its own quota; entries
without use the server's defaults. The directory is kept in ``nidd.json`` in the data
directory (with the SQLite store), written whenever it changes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .quotas import QuotaSpec
from .t8_fields import T8FormatError, external_id, msisdn

log = logging.getLogger(__name__)

PRINCIPAL_PREFIX = "nidd:"
MAX_TTL = 366 * 86400.0


def principal(ident: str) -> str:
    """The identity string registrations over NIDD are bound to."""
    return PRINCIPAL_PREFIX + ident


def check_identifier(ident: str, where: str = "/ident") -> str:
    """An External Identifier or an MSISDN; raises T8FormatError otherwise."""
    return external_id(ident, where) if "@" in ident else msisdn(ident, where)


def _ttl(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            1 <= value <= MAX_TTL):
        raise T8FormatError(where, f"a time to live is 1..{MAX_TTL:.0f} seconds")
    return float(value)


@dataclass(frozen=True, slots=True)
class NiddDevice:
    ident: str
    endpoint: str | None = None
    ttl: float | None = None
    quota: QuotaSpec | None = None

    @property
    def id_attribute(self) -> str:
        """How T8 bodies name the device: ``externalId`` or ``msisdn``."""
        return "externalId" if "@" in self.ident else "msisdn"

    def to_json(self) -> dict[str, Any]:
        return {"ident": self.ident, "endpoint": self.endpoint, "ttl": self.ttl,
                "quota": self.quota.to_json() if self.quota is not None else None}

    @classmethod
    def from_json(cls, value: Any, ident: str | None = None) -> NiddDevice:
        if not isinstance(value, dict):
            raise T8FormatError("/", "expected an object")
        unknown = set(value) - {"ident", "endpoint", "ttl", "quota"}
        if unknown:
            raise T8FormatError(f"/{sorted(unknown)[0]}", "not a NIDD device setting")
        name = check_identifier(str(ident or value.get("ident") or ""))
        endpoint = value.get("endpoint")
        if endpoint is not None and (not isinstance(endpoint, str) or not 1 <= len(
                endpoint) <= 255):
            raise T8FormatError("/endpoint", "an endpoint name is 1..255 characters")
        quota = value.get("quota")
        return cls(name, endpoint, _ttl(value.get("ttl"), "/ttl"),
                   QuotaSpec.from_json(quota) if quota is not None else None)

    @classmethod
    def from_text(cls, text: str) -> NiddDevice:
        """``IDENT`` or ``IDENT=ENDPOINT`` (the command line's form)."""
        ident, _, endpoint = text.partition("=")
        return cls(check_identifier(ident.strip()), endpoint.strip() or None)


@dataclass(frozen=True, slots=True)
class NiddGroup:
    external_group_id: str
    ttl: float | None = None
    quota: QuotaSpec | None = None

    def to_json(self) -> dict[str, Any]:
        return {"external_group_id": self.external_group_id, "ttl": self.ttl,
                "quota": self.quota.to_json() if self.quota is not None else None}

    @classmethod
    def from_json(cls, value: Any, group_id: str | None = None) -> NiddGroup:
        if not isinstance(value, dict):
            raise T8FormatError("/", "expected an object")
        unknown = set(value) - {"external_group_id", "ttl", "quota"}
        if unknown:
            raise T8FormatError(f"/{sorted(unknown)[0]}", "not a NIDD group setting")
        gid = external_id(str(group_id or value.get("external_group_id") or ""),
                          "/external_group_id")
        quota = value.get("quota")
        return cls(gid, _ttl(value.get("ttl"), "/ttl"),
                   QuotaSpec.from_json(quota) if quota is not None else None)


class NiddDirectory:
    def __init__(self, devices: Iterable[NiddDevice] = (), groups: Iterable[NiddGroup] = (),
                 path: Path | None = None) -> None:
        self.path = path
        self.devices: dict[str, NiddDevice] = {}
        self.groups: dict[str, NiddGroup] = {}
        self.by_endpoint: dict[str, str] = {}
        if path is not None and path.exists():
            self._load(path)
        for d in devices:
            self._put_device(d)
        for g in groups:
            self.groups[g.external_group_id] = g

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for d in data.get("devices", []):
                self._put_device(NiddDevice.from_json(d))
            for g in data.get("groups", []):
                group = NiddGroup.from_json(g)
                self.groups[group.external_group_id] = group
        except (OSError, ValueError, AttributeError) as e:
            log.error("cannot read the NIDD directory %s: %s", path, e)

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"devices": [d.to_json() for d in self.devices.values()],
                "groups": [g.to_json() for g in self.groups.values()]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)

    def _put_device(self, device: NiddDevice) -> NiddDevice | None:
        if device.endpoint is not None:
            other = self.by_endpoint.get(device.endpoint)
            if other is not None and other != device.ident:
                raise ValueError(f"endpoint {device.endpoint!r} belongs to NIDD device "
                                 f"{other}")
        old = self.devices.get(device.ident)
        if old is not None and old.endpoint is not None:
            self.by_endpoint.pop(old.endpoint, None)
        self.devices[device.ident] = device
        if device.endpoint is not None:
            self.by_endpoint[device.endpoint] = device.ident
        return old

    def put_device(self, device: NiddDevice) -> NiddDevice | None:
        """Add or replace a device; ValueError when its endpoint belongs to another."""
        old = self._put_device(device)
        self._save()
        return old

    def remove_device(self, ident: str) -> NiddDevice | None:
        old = self.devices.pop(ident, None)
        if old is not None and old.endpoint is not None:
            self.by_endpoint.pop(old.endpoint, None)
        self._save()
        return old

    def put_group(self, group: NiddGroup) -> NiddGroup | None:
        old = self.groups.get(group.external_group_id)
        self.groups[group.external_group_id] = group
        self._save()
        return old

    def remove_group(self, group_id: str) -> NiddGroup | None:
        old = self.groups.pop(group_id, None)
        self._save()
        return old
