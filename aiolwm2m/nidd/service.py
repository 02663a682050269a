"""NIDD for one LwM2M server: the T8 client, the configurations, the downlink, the NIDD
transport (``server.transports["nidd"]``), the callback handler and group delivery, wired
together and to the server's registrations.

The server starts it when ``ServerConfig.scef_url`` is set (the callbacks are served by the
product's HTTP server, see :mod:`aiolwm2m.web.routes_nidd`). Devices and groups are managed here
(:meth:`NiddService.put_device`, the REST API ``/api/nidd/...``), each change reflected at
the SCEF in the background. When a NIDD registration ends (De-register, expiry), what was
queued for the device is dropped, its pending deliveries are deleted at the SCEF, and its
configuration is deleted and made again, so that nothing meant for that registration
reaches the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.server.events import Deregistered, Event, Expired, Registered
from aiolwm2m.server.resources import RegistrationInterface, SendInterface
from aiolwm2m.transport.site import Site

from .authorizer import NiddAuthorizer
from .callbacks import CallbackHandler
from .configurations import ConfigEntry, Configurations
from .devices import NiddDevice, NiddDirectory, NiddGroup
from .downlink import Datagram, Downlink
from .groups import GroupDeliveries
from .quota_report import apn_instance, rate_control, report_quota
from .quotas import UPLINK, DeviceQuota, QuotaSpec
from .scef_client import T8Client, T8Error
from .settings import NiddSettings
from .transport import NiddEndpoint

if TYPE_CHECKING:
    from aiolwm2m.server.server import LwM2MServer

log = logging.getLogger(__name__)

TRANSPORT = "nidd"
CALLBACK_PATH = "/nidd/v1/callbacks"
#: Group members whose uplink route is remembered (a packet of theirs arrived through
#: their group's configuration); beyond, new members are refused (503).
MAX_MEMBERS = 1_000_000


class NiddService:
    def __init__(self, server: LwM2MServer, scef_url: str, settings: NiddSettings) -> None:
        if not settings.callback_url:
            raise ValueError("NIDD needs the URL the SCEF posts notifications to "
                             "(ServerConfig.nidd.callback_url, --scef-callback-url)")
        self.server = server
        self.settings = settings
        self.secret = settings.callback_secret or secrets.token_urlsafe(24)
        self.callback_url = f"{settings.callback_url.rstrip('/')}{CALLBACK_PATH}/{self.secret}"
        cfg = server.config
        path = None
        if cfg.store == "sqlite":
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            path = cfg.data_dir / "nidd.json"
        self.directory = NiddDirectory(settings.devices, settings.groups, path)
        self.client = T8Client(scef_url, settings.scs_as_id, token=settings.token,
                               timeout=settings.request_timeout,
                               max_connections=settings.max_in_flight)
        self.configurations = Configurations(self.client, settings, self.callback_url,
                                             on_active=self._config_active)
        self.downlink = Downlink(self.client, settings, self.route, quota_of=self.quota_of,
                                 on_failed=self._delivery_failed,
                                 on_config_lost=self._config_lost)
        self.site = Site(well_known_core=False)
        self.endpoint = NiddEndpoint(self.downlink, site=self.site,
                                     params=settings.transmission, ttl_of=self.ttl_of,
                                     packet_bits_of=self.packet_bits_of,
                                     confirmable=settings.confirmable)
        self.callbacks = CallbackHandler(self)
        self.groups = GroupDeliveries(self)
        self.endpoint.intercept = self.groups.intercept
        #: Group members by identifier: the group configuration they last spoke through.
        self.members: dict[str, ConfigEntry] = {}
        self.quotas: dict[str, DeviceQuota] = {}
        self._tasks = BackgroundTasks(log, "NIDD")
        self._sweeper: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    async def start_for(cls, server: LwM2MServer) -> NiddService:
        cfg = server.config
        assert cfg.scef_url is not None
        service = cls(server, cfg.scef_url, cfg.nidd)
        await service.start()
        return service

    async def start(self) -> None:
        server = self.server
        cfg = server.config
        self.site.add("rd", RegistrationInterface(server, TRANSPORT, self.endpoint), prefix=True)
        self.site.add("dp", SendInterface(server, TRANSPORT, self.endpoint))
        block1 = self.endpoint.dispatcher.block1
        block1.limits = cfg.reassembly
        block1.is_trusted = lambda peer: True  # the network authenticated every peer
        server.transports[TRANSPORT] = self.endpoint
        server.registry.authorizer = NiddAuthorizer(server.registry.authorizer,
                                                    self.directory, server.stores.security,
                                                    TRANSPORT)
        self._unsubscribe = server.events.subscribe(self._on_event)
        for device in self.directory.devices.values():
            self.configurations.want(device.id_attribute, device.ident, self._spec(device))
        for group in self.directory.groups.values():
            self.configurations.want("externalGroupId", group.external_group_id,
                                     group.quota or self.settings.quota)
        self.configurations.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="nidd-sweeper")

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.configurations.close()
        self.downlink.close()
        self._tasks.cancel_all()
        await self.endpoint.close()
        await self.client.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            self.downlink.sweep()

    # -- devices and groups -----------------------------------------------------------------

    def _spec(self, device: NiddDevice) -> QuotaSpec | None:
        return device.quota or self.settings.quota

    def put_device(self, device: NiddDevice) -> NiddDevice | None:
        """Add or change a device (ValueError if its endpoint belongs to another)."""
        old = self.directory.put_device(device)
        self.quotas.pop(device.ident, None)
        if old is not None and old.id_attribute != device.id_attribute:
            self.configurations.unwant(old.id_attribute, old.ident)
        self.configurations.want(device.id_attribute, device.ident, self._spec(device))
        return old

    def remove_device(self, ident: str) -> NiddDevice | None:
        old = self.directory.remove_device(ident)
        if old is not None:
            self.quotas.pop(ident, None)
            self.configurations.unwant(old.id_attribute, ident)
        return old

    def put_group(self, group: NiddGroup) -> NiddGroup | None:
        old = self.directory.put_group(group)
        for ident, entry in self.members.items():
            if entry.target == group.external_group_id:
                self.quotas.pop(ident, None)
        self.configurations.want("externalGroupId", group.external_group_id,
                                 group.quota or self.settings.quota)
        return old

    def remove_group(self, group_id: str) -> NiddGroup | None:
        old = self.directory.remove_group(group_id)
        if old is not None:
            self.configurations.unwant("externalGroupId", group_id)
            for ident in [i for i, e in self.members.items() if e.target == group_id]:
                del self.members[ident]
        return old

    def learn_member(self, ident: str, entry: ConfigEntry) -> bool:
        known = self.members.get(ident)
        if known is entry:
            return True
        if known is None and len(self.members) >= MAX_MEMBERS:
            return False
        self.members[ident] = entry
        return True

    def _group_of(self, ident: str) -> NiddGroup | None:
        entry = self.members.get(ident)
        return self.directory.groups.get(entry.target) if entry is not None else None

    # -- what the transport and the downlink ask --------------------------------------------

    def _device_entry(self, ident: str) -> ConfigEntry | None:
        return self.configurations.active(("externalId" if "@" in ident else "msisdn", ident))

    def route(self, ident: str) -> tuple[str, str] | None:
        entry = self._device_entry(ident) or self.members.get(ident)
        if entry is None or entry.url is None:
            return None
        return entry.url, "externalId" if "@" in ident else "msisdn"

    def ttl_of(self, ident: str) -> float:
        device = self.directory.devices.get(ident)
        if device is not None and device.ttl is not None:
            return device.ttl
        group = self._group_of(ident)
        if group is not None and group.ttl is not None:
            return group.ttl
        return self.settings.ttl

    def packet_bits_of(self, ident: str) -> int | None:
        entry = self._device_entry(ident) or self.members.get(ident)
        return entry.maximum_packet_size if entry is not None else None

    def quota_spec(self, ident: str) -> QuotaSpec | None:
        device = self.directory.devices.get(ident)
        if device is not None and device.quota is not None:
            return device.quota
        group = self._group_of(ident)
        if group is not None and group.quota is not None:
            return group.quota
        return self.settings.quota

    def quota_of(self, ident: str) -> DeviceQuota | None:
        quota = self.quotas.get(ident)
        if quota is None:
            spec = self.quota_spec(ident)
            if spec is None:
                return None
            quota = self.quotas[ident] = DeviceQuota(spec, self.endpoint.clock())
        return quota

    def uplink_limit(self, entry: ConfigEntry) -> int:
        cap = self.settings.max_callback_body
        if entry.maximum_packet_size:
            return min(cap, entry.maximum_packet_size // 8)
        return cap

    def uplink_quota(self, ident: str, size: int) -> str | None:
        """None when an uplink packet of ``size`` bytes fits the device's quota (and is
        counted), else the limit it breaks ("packets" or "bytes")."""
        quota = self.quota_of(ident)
        if quota is None:
            return None
        now = self.endpoint.clock()
        wait, which = quota.wait(UPLINK, size, now)
        if wait > 0:
            self.downlink.stats[f"uplink_quota_{which}"] += 1
            return which
        quota.take(UPLINK, size, now)
        return None

    # -- what the SCEF tells ----------------------------------------------------------------

    def delivery_status(self, url: str, status: str) -> None:
        self.downlink.on_status(url, status)

    def _delivery_failed(self, d: Datagram, reason: str) -> None:
        self.endpoint.delivery_failed(d, reason)

    def _config_lost(self, url: str) -> None:
        entry = self.configurations.by_url.get(url)
        if entry is not None:
            self.configurations.lost(entry, "404 on delivery")

    def _config_active(self, entry: ConfigEntry) -> None:
        if entry.is_group:
            self.downlink.wake_all()
        else:
            self.downlink.wake((entry.target, 0))

    # -- registrations ----------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Deregistered | Expired):
            reg = event.registration
            if reg.transport == TRANSPORT:
                self._registration_ended(str(reg.address[0]))
        elif isinstance(event, Registered) and event.registration.transport == TRANSPORT:
            reg = event.registration
            spec = self.quota_spec(str(reg.address[0]))
            if rate_control(spec) is not None and apn_instance(reg) is not None:
                self._tasks.spawn(report_quota(self.server, reg, spec))

    def _registration_ended(self, ident: str) -> None:
        peer = (ident, 0)
        self.endpoint.drop_peer(peer)
        for url in self.downlink.forget_peer(peer):
            self._tasks.spawn(self._delete_delivery(url))
        entry = self._device_entry(ident)
        if entry is not None:
            self.configurations.reset(entry)

    async def _delete_delivery(self, url: str) -> None:
        try:
            await self.client.delete_delivery(url)
        except T8Error as e:
            log.info("deleting pending delivery %s: %s", url, e)

    # -- state for the REST API and metrics -------------------------------------------------

    def device_view(self, ident: str) -> dict[str, Any] | None:
        device = self.directory.devices.get(ident)
        if device is None:
            return None
        entry = self.configurations.entries.get((device.id_attribute, ident))
        quota = self.quota_of(ident)
        # What applies when the entry leaves ttl or quota to its group or the server's
        # defaults: the allowance left is counted against that.
        return {**device.to_json(),
                "ttl_in_force": self.ttl_of(ident),
                "quota_in_force": quota.spec.to_json() if quota else None,
                "configuration": entry.to_json() if entry is not None else None,
                "quota_remaining": quota.remaining(self.endpoint.clock()) if quota else None}

    def group_view(self, group_id: str) -> dict[str, Any] | None:
        group = self.directory.groups.get(group_id)
        if group is None:
            return None
        entry = self.configurations.entries.get(("externalGroupId", group_id))
        return {**group.to_json(), "ttl_in_force": group.ttl or self.settings.ttl,
                "quota_in_force": (q.to_json() if (q := group.quota or self.settings.quota)
                                   else None),
                "configuration": entry.to_json() if entry is not None else None}

    def status(self) -> dict[str, Any]:
        entries = list(self.configurations.entries.values())
        return {"scef": self.client.api_root, "scs_as_id": self.settings.scs_as_id,
                "reachable": self.client.reachable,
                "configurations": len(entries),
                "active_configurations": sum(1 for e in entries if e.url is not None),
                "devices": len(self.directory.devices), "groups": len(self.directory.groups),
                "downlink": self.downlink.snapshot(), "transport": dict(self.endpoint.stats)}
