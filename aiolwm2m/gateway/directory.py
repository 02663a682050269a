"""The server's records of the end devices behind gateways.

A gateway announces its end devices in Object 25; the server reads ``/25`` and keeps one
:class:`EndDeviceRecord` per end device under the gateway's registration. Each record
gives a :class:`~aiolwm2m.store.records.Registration` view of the end device (the
gateway's address, transport, identity, lifetime and queue mode; the end device's objects;
its prefix as root path) and a :class:`~aiolwm2m.lwm2m.coap_mapping.DeviceContext` that
puts the prefix in Uri-Paths and payload names. That is all the server needs for every
operation, observation and queued request to work on an end device as on any client.

Records live and die with their gateway's registration; they are not stored (a restarted
server reads ``/25`` again). The per-request cost for ordinary devices is nil: the server
looks here only after its own registrations missed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple

from aiolwm2m.lwm2m.coap_mapping import DeviceContext
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.store.records import ObjectLinkEntry, Registration

from .names import EndDeviceName
from .node_model import add_node_model

__all__ = ["END_DEVICE_ID_SEPARATOR", "EndDeviceDirectory", "EndDeviceInfo",
           "EndDeviceRecord", "SyncChanges", "end_device_fields", "registration_view"]

#: Between the gateway's registration id and the prefix in an end device's id. Registration
#: ids are base64url, so no ordinary registration id holds it.
END_DEVICE_ID_SEPARATOR: Final = "/"
# Distinct (version, formats, root, objects) combinations whose pinned model is kept.
_MAX_BASE_CONTEXTS: Final = 1024


class EndDeviceInfo(NamedTuple):
    """One end device as a gateway's ``/25/x`` describes it (already validated)."""

    instance_id: int
    device_id: str
    prefix: str
    links: str
    objects: tuple[ObjectLinkEntry, ...]


@dataclass(slots=True, eq=False)
class EndDeviceRecord:
    gateway_id: str
    gateway: str
    instance_id: int
    device_id: str
    prefix: str
    links: str
    objects: tuple[ObjectLinkEntry, ...]
    added_at: float
    #: The name the server's API takes (``EndDeviceName(gateway, prefix)``).
    name: EndDeviceName
    #: The id of its Registration view, ``{gateway registration id}/{prefix}``.
    id: str
    view: Registration | None = None
    view_of: Registration | None = None


class SyncChanges(NamedTuple):
    added: list[EndDeviceRecord]
    removed: list[EndDeviceRecord]
    changed: list[EndDeviceRecord]


def end_device_fields(reg: Registration) -> dict[str, str]:
    """``gateway``, ``prefix`` and ``device_id`` of an end device's registration view (for
    events and the REST API); empty for an ordinary registration."""
    name = reg.endpoint
    if not isinstance(name, EndDeviceName):
        return {}
    extra = dict(reg.extra)
    return {"gateway": name.gateway, "prefix": name.prefix,
            "device_id": extra.get("device_id", name.prefix)}


class EndDeviceDirectory:
    def __init__(self, model: ModelRegistry, contexts: dict[str, DeviceContext]) -> None:
        add_node_model(model)  # what gateways running the broker say of their nodes
        self.model = model
        #: The registry's contexts of end devices, by registration id (shared dict).
        self.contexts = contexts
        #: gateway registration id -> prefix -> record
        self.by_gateway: dict[str, dict[str, EndDeviceRecord]] = {}
        #: end device registration id -> record
        self.by_id: dict[str, EndDeviceRecord] = {}
        #: gateway registration id -> its current registration
        self.gateways: dict[str, Registration] = {}
        self._base_contexts: dict[tuple[object, ...], DeviceContext] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    def records(self, gateway_id: str) -> list[EndDeviceRecord]:
        return sorted(self.by_gateway.get(gateway_id, {}).values(), key=lambda r: r.prefix)

    def __iter__(self) -> Iterator[EndDeviceRecord]:
        return iter(list(self.by_id.values()))

    # -- lookups --------------------------------------------------------------------------

    def registration_by_id(self, registration_id: str) -> Registration | None:
        record = self.by_id.get(registration_id)
        return None if record is None else self.view(record)

    def find(self, name: EndDeviceName, gateway: Registration | None
             ) -> EndDeviceRecord | None:
        """The record of ``name`` behind ``gateway`` (the current registration of
        ``name.gateway``), or None."""
        if gateway is None:
            return None
        devices = self.by_gateway.get(gateway.id)
        return None if devices is None else devices.get(name.prefix)

    def view(self, record: EndDeviceRecord) -> Registration:
        """The end device as a Registration, current with its gateway's."""
        gateway = self.gateways[record.gateway_id]
        view = record.view
        if view is None or record.view_of is not gateway:
            view = registration_view(record, gateway)
            record.view = view
            record.view_of = gateway
        return view

    # -- changes --------------------------------------------------------------------------

    def gateway_updated(self, gateway: Registration) -> None:
        """A gateway's registration changed (Update): views follow lazily; contexts are
        built again when what they depend on changed."""
        previous = self.gateways.get(gateway.id)
        self.gateways[gateway.id] = gateway
        if previous is not None and (
                previous.lwm2m_version, previous.content_formats, previous.root_path) != (
                gateway.lwm2m_version, gateway.content_formats, gateway.root_path):
            for record in self.by_gateway.get(gateway.id, {}).values():
                self.contexts[record.id] = self._context(record, gateway)

    def replace_devices(self, gateway: Registration, devices: Iterable[EndDeviceInfo],
                        now: float) -> SyncChanges:
        """Make the gateway's records those of ``devices`` (what ``/25`` holds now)."""
        self.gateways[gateway.id] = gateway
        current = self.by_gateway.setdefault(gateway.id, {})
        wanted = {d.prefix: d for d in devices}
        removed = [current[p] for p in list(current) if p not in wanted]
        for record in removed:
            self._forget(record)
        added: list[EndDeviceRecord] = []
        changed: list[EndDeviceRecord] = []
        for prefix, info in wanted.items():
            existing = current.get(prefix)
            if existing is None:
                record = EndDeviceRecord(
                    gateway.id, gateway.endpoint, info.instance_id, info.device_id, prefix,
                    info.links, info.objects, now, EndDeviceName(gateway.endpoint, prefix),
                    f"{gateway.id}{END_DEVICE_ID_SEPARATOR}{prefix}")
                current[prefix] = record
                self.by_id[record.id] = record
                self.contexts[record.id] = self._context(record, gateway)
                added.append(record)
            elif (existing.instance_id, existing.device_id, existing.links) != (
                    info.instance_id, info.device_id, info.links):
                record = existing
                record.instance_id = info.instance_id
                record.device_id = info.device_id
                record.links = info.links
                record.objects = info.objects
                record.view = None
                self.contexts[record.id] = self._context(record, gateway)
                changed.append(record)
        return SyncChanges(added, removed, changed)

    def drop_gateway(self, gateway_id: str) -> list[EndDeviceRecord]:
        """The gateway's registration ended: its records go."""
        self.gateways.pop(gateway_id, None)
        records = list(self.by_gateway.pop(gateway_id, {}).values())
        for record in records:
            self.by_id.pop(record.id, None)
            self.contexts.pop(record.id, None)
        return records

    def _forget(self, record: EndDeviceRecord) -> None:
        devices = self.by_gateway.get(record.gateway_id)
        if devices is not None:
            devices.pop(record.prefix, None)
        self.by_id.pop(record.id, None)
        self.contexts.pop(record.id, None)

    def _context(self, record: EndDeviceRecord, gateway: Registration) -> DeviceContext:
        key = (gateway.lwm2m_version, gateway.content_formats, gateway.root_path,
               record.objects)
        base = self._base_contexts.get(key)
        if base is None:
            versions = {o.object_id: o.version or "1.0" for o in record.objects
                        if o.instance_id is None}
            base = DeviceContext.for_client(self.model, gateway.lwm2m_version,
                                            gateway.content_formats, gateway.root_path,
                                            versions)
            if len(self._base_contexts) >= _MAX_BASE_CONTEXTS:
                self._base_contexts.clear()
            self._base_contexts[key] = base
        return dataclasses.replace(base, root_path=(*base.root_path, record.prefix),
                                   name_prefix="/" + record.prefix)


def registration_view(record: EndDeviceRecord, gateway: Registration) -> Registration:
    """The Registration an end device is addressed through (see the module docstring)."""
    root = gateway.root_path.rstrip("/") + "/" + record.prefix + "/"
    return Registration(
        id=record.id, endpoint=record.name, address=gateway.address,
        lifetime=gateway.lifetime, lwm2m_version=gateway.lwm2m_version,
        binding=gateway.binding, queue_mode=gateway.queue_mode, sms=None,
        transport=gateway.transport, identity=gateway.identity, links=record.links,
        objects=record.objects, root_path=root, content_formats=gateway.content_formats,
        registered_at=record.added_at, updated_at=gateway.updated_at,
        extra=(("gateway", gateway.endpoint), ("prefix", record.prefix),
               ("device_id", record.device_id), ("instance", str(record.instance_id))))
