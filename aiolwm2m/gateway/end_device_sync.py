"""The server side of gateways: reading ``/25`` and keeping the end-device records current.

When a client whose object list names Object 25 registers, the server reads ``/25`` and
makes one record per valid instance (:mod:`.directory`). An Update whose ``/25`` instances
changed is read again: only the new instances when a few came (a gateway of 10,000 end
devices adds one without sending 10,000), the whole object otherwise. Records go when the
gateway drops an instance, and all of them with the gateway's registration.

Gateways that list no end devices when they register (real ones do not) work the same way:
the end devices come with later Updates. The Register payload itself never lists end-device
objects (Gateway TS; prefixed links there are refused like any malformed link).

An instance the server cannot use is refused on its own (logged, counted in
``lwm2m_refusals``, the Refused event names the gateway) and the others are kept: a prefix
that is only digits (it would read as an object id), with characters outside ``[A-Za-z0-9
._~-]``, longer than 64, or used twice; a device id that is not a short string; an object
list that does not parse or is too long; instances beyond ``max_end_devices_per_gateway``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m.errors import LwM2MError, shown
from aiolwm2m.lwm2m.formats import decode_object_list
from aiolwm2m.lwm2m.nodes import LwM2MObject, ObjectInstance, SingleResource
from aiolwm2m.lwm2m.operations import ReadRequest, ReadResponse
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.lwm2m.prefixed_path import prefix_problem
from aiolwm2m.store.records import ObjectLinkEntry, Registration

from .directory import (
    EndDeviceDirectory,
    EndDeviceInfo,
    EndDeviceRecord,
    SyncChanges,
    registration_view,
)
from .events import EndDeviceAdded, EndDeviceChanged, EndDeviceRemoved
from .names import EndDeviceName

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)

__all__ = ["EndDeviceSync", "lists_gateway_object"]

GATEWAY_OBJECT: Final = 25
_DEVICE_ID, _PREFIX, _OBJECTS = 0, 1, 3
_MAX_DEVICE_ID: Final = 255
#: Up to this many new /25 instances in one Update are read one by one; more, /25 whole.
_PIECEMEAL: Final = 64
_READ_TIMEOUT: Final = 60.0
# Object lists are interned: 10,000 end devices of one kind share one parsed list.
_MAX_INTERNED: Final = 4096

_gateway_lists: dict[int, tuple[tuple[ObjectLinkEntry, ...], bool]] = {}


def lists_gateway_object(objects: tuple[ObjectLinkEntry, ...]) -> bool:
    """Whether an object list names Object 25. Registrations of one kind share their
    list, so this is one dict lookup per Register or Update after the first."""
    cached = _gateway_lists.get(id(objects))
    if cached is not None and cached[0] is objects:
        return cached[1]
    found = any(o.object_id == GATEWAY_OBJECT for o in objects)
    if len(_gateway_lists) >= _MAX_INTERNED:
        _gateway_lists.clear()
    _gateway_lists[id(objects)] = (objects, found)
    return found


def _instances_of_25(reg: Registration) -> frozenset[int]:
    return frozenset(o.instance_id for o in reg.objects
                     if o.object_id == GATEWAY_OBJECT and o.instance_id is not None)


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class EndDeviceSync:
    def __init__(self, server: LwM2MServer, directory: EndDeviceDirectory) -> None:
        self.server = server
        self.directory = directory
        self._tasks = BackgroundTasks(log, "reading a gateway's /25")
        # Gateways being read, and those to read again when that read ends.
        self._running: set[str] = set()
        self._again: dict[str, Registration | None] = {}
        self._interned: dict[str, tuple[ObjectLinkEntry, ...]] = {}

    # -- what the server tells ------------------------------------------------------------

    def registered(self, reg: Registration) -> None:
        """A new registration (cheap for ordinary devices: one dict lookup)."""
        if lists_gateway_object(reg.objects):
            self._schedule(reg, None)

    def updated(self, reg: Registration, previous: Registration) -> None:
        """An Update: follow the gateway's registration, and its ``/25`` if it changed."""
        directory = self.directory
        known = reg.id in directory.gateways
        listed = lists_gateway_object(reg.objects)
        if not known and not listed:
            return
        if known and not listed:
            self._tasks.spawn(self.ended(reg, "its gateway no longer lists /25"))
            return
        if known:
            directory.gateway_updated(reg)
        if reg.objects is previous.objects and known:
            return
        self._schedule(reg, previous if known else None)

    async def ended(self, reg: Registration, reason: str) -> None:
        """The gateway's registration ended: so do its end devices."""
        records = self.directory.drop_gateway(reg.id)
        self._again.pop(reg.id, None)
        await self._removed(records, reg, reason)

    def resume(self, registrations: Iterable[Registration]) -> None:
        """After a restart: read the ``/25`` of every gateway that is still registered."""
        for reg in registrations:
            if lists_gateway_object(reg.objects):
                self._schedule(reg, None)

    def close(self) -> None:
        self._tasks.cancel_all()

    def registration(self, name: EndDeviceName) -> Registration | None:
        record = self.directory.find(name, self.server.registry.by_endpoint.get(name.gateway))
        return None if record is None else self.directory.view(record)

    # -- reading /25 ----------------------------------------------------------------------

    def _schedule(self, reg: Registration, previous: Registration | None) -> None:
        if reg.id in self._running:
            # One read at a time per gateway; a change meanwhile is read afterwards (whole,
            # unless only the last Update's own difference is pending).
            self._again[reg.id] = previous if reg.id not in self._again else None
            return
        self._running.add(reg.id)
        self._tasks.spawn(self._sync_loop(reg, previous))

    async def _sync_loop(self, reg: Registration, previous: Registration | None) -> None:
        try:
            while True:
                await self._sync(reg, previous)
                if reg.id not in self._again:
                    return
                previous = self._again.pop(reg.id)
                current = self.server.registry.by_id.get(reg.id)
                if current is None:
                    return
                reg = current
        finally:
            self._running.discard(reg.id)

    async def _sync(self, reg: Registration, previous: Registration | None) -> None:
        if self.server.registry.by_id.get(reg.id) is None:
            return
        known = self.directory.by_gateway.get(reg.id)
        fresh: frozenset[int] = frozenset()
        gone: frozenset[int] = frozenset()
        whole = previous is None or known is None
        if not whole:
            assert previous is not None
            new_ids, old_ids = _instances_of_25(reg), _instances_of_25(previous)
            fresh, gone = new_ids - old_ids, old_ids - new_ids
            whole = len(fresh) > _PIECEMEAL or (not fresh and not gone)
        try:
            if whole:
                instances = await self._read(reg, LwM2MPath(GATEWAY_OBJECT))
            else:
                instances = []
                for iid in sorted(fresh):
                    instances.extend(await self._read(reg, LwM2MPath(GATEWAY_OBJECT, iid)))
        except Exception as e:  # the gateway keeps its current records
            log.warning("cannot read /25 of gateway %s: %s", reg.endpoint, e)
            return
        current = self.server.registry.by_id.get(reg.id)
        if current is None:
            return  # ended while we read
        if whole:
            kept: list[EndDeviceInfo] = []
        else:
            assert known is not None
            kept = [_info_of(r) for r in known.values()
                    if r.instance_id not in gone and r.instance_id not in fresh]
        devices = self._validated(current, kept, instances)
        changes = self.directory.replace_devices(current, devices, self.server.config.clock())
        await self._announce(current, changes)

    async def _read(self, reg: Registration, path: LwM2MPath) -> list[ObjectInstance]:
        response = await self.server.send(reg.endpoint, ReadRequest(path),
                                          timeout=_READ_TIMEOUT)
        if not isinstance(response, ReadResponse) or not response.success:
            if response.code == Code.NOT_FOUND and len(path) == 2:  # gone again meanwhile
                return []
            raise RuntimeError(f"Read {path} answered {response.code_text}")
        node = response.content
        if isinstance(node, LwM2MObject):
            return list(node.instances.values())
        if isinstance(node, ObjectInstance):
            return [node]
        raise RuntimeError(f"Read {path} answered no object or instance")

    def _validated(self, reg: Registration, kept: list[EndDeviceInfo],
                   instances: list[ObjectInstance]) -> list[EndDeviceInfo]:
        limit = self.server.config.max_end_devices_per_gateway
        devices = list(kept)
        prefixes = {d.prefix for d in devices}
        for inst in sorted(instances, key=lambda i: i.id):
            try:
                info = self._info(inst)
                if info.prefix in prefixes:
                    raise _Refused("gateway-duplicate-prefix",
                                   f"/25/{inst.id}: prefix {info.prefix!r} is used by another "
                                   "end device")
                if len(devices) >= limit:
                    raise _Refused("gateway-too-many-end-devices",
                                   f"/25/{inst.id}: more than {limit} end devices")
            except _Refused as e:
                self.server.refusals.refused(transport=reg.transport, reason=e.reason,
                                             endpoint=reg.endpoint, detail=e.detail,
                                             peer=f"{reg.address[0]}:{reg.address[1]}")
                continue
            devices.append(info)
            prefixes.add(info.prefix)
        return devices

    def _info(self, inst: ObjectInstance) -> EndDeviceInfo:
        where = f"/25/{inst.id}"
        device_id = _text(inst, _DEVICE_ID)
        prefix = _text(inst, _PREFIX)
        links = _text(inst, _OBJECTS)
        if prefix is None:
            raise _Refused("gateway-bad-prefix", f"{where}: no prefix (resource 1)")
        problem = prefix_problem(prefix)
        if problem is not None:
            raise _Refused("gateway-bad-prefix", f"{where}: {problem}")
        if device_id is None or not device_id or len(device_id) > _MAX_DEVICE_ID:
            raise _Refused("gateway-bad-device-id",
                           f"{where}: the device id (resource 0) is not a string of 1 to "
                           f"{_MAX_DEVICE_ID} characters")
        return EndDeviceInfo(inst.id, device_id, prefix, links or "",
                             self._objects(where, prefix, links or ""))

    def _objects(self, where: str, prefix: str, links: str) -> tuple[ObjectLinkEntry, ...]:
        interned = self._interned.get(links)
        if interned is not None:
            return interned
        text = links
        # Lenient: a gateway that writes its links with the prefix (</dev1/3303/0>).
        lead = f"</{prefix}/"
        if lead in text:
            text = text.replace(lead, "</")
        try:
            listed = decode_object_list(
                text, max_entries=self.server.config.max_end_device_objects)
        except LwM2MError as e:
            raise _Refused("gateway-bad-device-objects",
                           f"{where}: IoT Device Objects (resource 3): {shown(str(e), 120)}"
                           ) from None
        entries: list[ObjectLinkEntry] = []
        for entry in listed.objects:  # the shape of a registration's list
            entries.append(ObjectLinkEntry(entry.object_id, None, entry.version))
            entries.extend(ObjectLinkEntry(entry.object_id, iid) for iid in entry.instances)
        objects = tuple(entries)
        if len(self._interned) >= _MAX_INTERNED:
            self._interned.clear()
        self._interned[links] = objects
        return objects

    # -- telling everyone -----------------------------------------------------------------

    async def _announce(self, gateway: Registration, changes: SyncChanges) -> None:
        await self._removed(changes.removed, gateway, "removed by its gateway")
        server = self.server
        directory = self.directory
        queue = server.queue
        for record in changes.added:
            queue.behind[record.id] = gateway.id
        if changes.added or changes.changed or changes.removed:
            log.info("gateway %s: %d end devices (%d added, %d changed, %d removed)",
                     gateway.endpoint, len(directory.by_gateway.get(gateway.id, {})),
                     len(changes.added), len(changes.changed), len(changes.removed))
        if server.events.watched:
            for record in changes.added:
                server.events.emit(EndDeviceAdded(directory.view(record)))
            for record in changes.changed:
                server.events.emit(EndDeviceChanged(directory.view(record)))

    async def _removed(self, records: list[EndDeviceRecord], gateway: Registration,
                       reason: str) -> None:
        if not records:
            return
        server = self.server
        observed = {a.record.registration_id for a in server.observations.active.values()}
        for record in records:
            server.queue.behind.pop(record.id, None)
            view = record.view if record.view is not None else registration_view(record, gateway)
            server.queue.forget(view)
            if record.id in observed:
                await server.observations.drop_registration(view, reason)
            if server.events.watched:
                server.events.emit(EndDeviceRemoved(view, reason))


def _text(inst: ObjectInstance, rid: int) -> str | None:
    """A resource's value as text (a gateway announcing Object 25 without ``ver=2.0`` gets
    resource 3 decoded by its format's own type: text, or bytes in TLV)."""
    res = inst.resources.get(rid)
    if not isinstance(res, SingleResource):
        return None
    value: Any = res.value
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _info_of(record: EndDeviceRecord) -> EndDeviceInfo:
    return EndDeviceInfo(record.instance_id, record.device_id, record.prefix, record.links,
                         record.objects)


