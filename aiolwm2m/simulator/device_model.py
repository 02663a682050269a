"""A simulated device's object tree, built when a server needs it.

The tree is made of the client library's standard objects and interfaces, so a simulated
device answers reads, writes, observes, discovers and bootstrap requests exactly as an
:class:`~aiolwm2m.client.LwM2MClient` would. It exists only while the device needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiolwm2m.client.access_rights import AccessRights
from aiolwm2m.client.attribute_store import AttributeStore
from aiolwm2m.client.bootstrap_interface import BootstrapInterface
from aiolwm2m.client.control import DownloadError
from aiolwm2m.client.dm_interface import DeviceManagement
from aiolwm2m.client.instance import resource
from aiolwm2m.client.objects import (
    DeviceInstance,
    SecurityInstance,
    ServerInstance,
    TemperatureInstance,
)
from aiolwm2m.client.objects.firmware import UNSUPPORTED_PROTOCOL
from aiolwm2m.client.observations import ObservationEngine
from aiolwm2m.client.tree import ObjectTree
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.path import LwM2MPath

from .device import SimDevice
from .firmware import SimulatedFirmware

if TYPE_CHECKING:
    from .fleet import Fleet

TEMPERATURE_PATH = LwM2MPath(3303, 0, 5700)
_BOOTSTRAP_SECURITY_IID = 0
_SERVER_SECURITY_IID = 1


class SimulatedTemperature(TemperatureInstance):
    """Object 3303 whose value follows the fleet's temperature model."""

    sensor_value = resource(5700)

    def __init__(self, fleet: Fleet, index: int) -> None:
        super().__init__(0)
        self.fleet = fleet
        self.device_index = index

    @sensor_value.reader
    def _drifting(self) -> float:
        return self.fleet.temperature(self.device_index)


class SimControl:
    """The client controls of one simulated device, acting on the fleet."""

    def __init__(self, fleet: Fleet, device: SimDevice) -> None:
        self.fleet = fleet
        self.device = device

    def trigger_update(self, ssid: int) -> None:
        self.fleet.request_update(self.device)

    def disable_server(self, ssid: int, seconds: float) -> None:
        self.fleet.disable(self.device, seconds)

    def trigger_bootstrap(self) -> None:
        self.fleet.rebootstrap(self.device)

    def wall_time(self) -> float:
        return self.fleet.wall()

    def traffic(self) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    async def download(self, uri: str, max_size: int) -> bytes:
        raise DownloadError(UNSUPPORTED_PROTOCOL, "simulated devices do not download")


class DeviceModel:
    """The materialised state of one device: tree, attributes, observations, interfaces."""

    __slots__ = ("attributes", "bootstrap", "device", "dm", "finished", "fleet", "keep",
                 "observations", "sequence", "tree")

    def __init__(self, fleet: Fleet, device: SimDevice, *, bootstrapping: bool) -> None:
        tree = ObjectTree(fleet.model)
        tree.control = SimControl(fleet, device)
        tree.spawner = fleet.spawn
        for cls in (SecurityInstance, ServerInstance):
            tree.register_class(cls)
        if fleet.bootstrap is not None:
            tree.add(SecurityInstance(_BOOTSTRAP_SECURITY_IID, server_uri=fleet.bootstrap.uri,
                                      bootstrap_server=True), announce=False)
        if device.server is not None and not bootstrapping:
            tree.add(SecurityInstance(_SERVER_SECURITY_IID, server_uri=device.server.uri,
                                      short_server_id=device.server.ssid), announce=False)
            tree.add(ServerInstance(0, short_server_id=device.server.ssid,
                                    lifetime=device.lifetime or fleet.profile.lifetime,
                                    binding="U"), announce=False)
        tree.add(DeviceInstance(0, serial_number=fleet.profile.endpoint(device.index),
                                model_number="aiolwm2m-simulated", supported_binding="U",
                                firmware_version=device.firmware_version
                                or fleet.profile.firmware.version),
                 announce=False)
        tree.add(SimulatedTemperature(fleet, device.index), announce=False)
        tree.add(SimulatedFirmware(fleet, device), announce=False)
        tree.value_listeners.append(self._value_changed)
        self.tree = tree
        self.attributes = AttributeStore()
        self.observations = ObservationEngine(self._effective, tree.numeric_value)
        self.dm = DeviceManagement(tree, self.attributes, self.observations,
                                   AccessRights(tree), self._defaults)
        self.finished = False
        self.bootstrap = BootstrapInterface(tree, self._finished) if bootstrapping else None
        self.keep = False
        self.sequence = 1
        self.fleet = fleet
        self.device = device

    def _value_changed(self, path: LwM2MPath) -> None:
        # Firmware state moves on its own (downloads, installation): its observers hear it.
        if path[0] == 5 and len(self.observations):
            now = self.fleet.now()
            if self.observations.value_changed(path, now):
                self.fleet.served.notify(self.device, self, now)

    def _finished(self) -> None:
        self.finished = True

    def _defaults(self, ssid: int) -> NotificationAttributes:
        srv = self.tree.get(1, 0)
        if srv is None:
            return NotificationAttributes()
        return NotificationAttributes(pmin=srv.get(2), pmax=srv.get(3))

    def _effective(self, ssid: int, path: LwM2MPath) -> NotificationAttributes:
        return self.attributes.effective(ssid, path, self._defaults(ssid))

    def next_sequence(self) -> int:
        self.sequence = (self.sequence + 1) & 0xFFFFFF
        return self.sequence

    def server_account(self) -> tuple[str, int, int] | None:
        """After a bootstrap: (server URI, Short Server ID, lifetime) of the first account."""
        ssids = {int(s.get(0)): s for s in self.tree.instances(1) if s.get(0) is not None}
        for sec in self.tree.instances(0):
            if sec.get(1) or sec.get(10) is None:
                continue
            srv = ssids.get(int(sec.get(10)))
            if srv is not None:
                return str(sec.get(0)), int(sec.get(10)), int(srv.get(1) or 0)
        return None

    @property
    def needed(self) -> bool:
        """Whether the model holds state the device cannot rebuild."""
        return self.keep or len(self.observations) > 0


def model_links(fleet: Any) -> list[Any]:
    """The object list every simulated device registers with."""
    from .device import ServerTarget

    probe = SimDevice(0)
    probe.server = ServerTarget("coap://127.0.0.1", ("127.0.0.1", 5683), 1)
    return DeviceModel(fleet, probe, bootstrapping=False).tree.object_entries()
