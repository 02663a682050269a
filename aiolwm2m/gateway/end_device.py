"""End devices as the gateway fronts them.

An :class:`EndDevice` answers Device Management requests whose prefix the gateway has
already taken off (``GET /3303/0/5700``, names without prefix), keeps the observations the
server holds on it, and lists its objects for ``/25/x/3``. :class:`TreeEndDevice` is one
made of client-library object instances in this process; :mod:`.coap_node` and
:mod:`.broker_nodes` build on it for devices reached over CoAP or through the broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Hashable, Iterable
from typing import TYPE_CHECKING

from aiolwm2m.client.access_rights import AccessRights
from aiolwm2m.client.attribute_store import AttributeStore
from aiolwm2m.client.dm_interface import DeviceManagement
from aiolwm2m.client.instance import Instance
from aiolwm2m.client.observations import ObservationEngine
from aiolwm2m.client.tree import ObjectTree, client_model
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.formats import encode_object_list
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.lwm2m.prefixed_path import check_prefix

if TYPE_CHECKING:
    from .gateway import LwM2MGateway

__all__ = ["EndDevice", "TreeEndDevice", "end_device_model"]

Result = Message | Awaitable[Message]
_shared_model: ModelRegistry | None = None


def end_device_model() -> ModelRegistry:
    """One model shared by the end devices that bring none: the client's core objects."""
    global _shared_model
    if _shared_model is None:
        _shared_model = client_model()
    return _shared_model


class EndDevice:
    """A device behind the gateway. Subclasses answer :meth:`handle`."""

    observations: ObservationEngine

    def __init__(self, prefix: str, device_id: str | None = None) -> None:
        #: What the server puts in front of this device's paths (``/25/x/1``).
        self.prefix = check_prefix(prefix)
        #: What identifies the device to the server (``/25/x/0``), the prefix by default.
        self.device_id = device_id if device_id is not None else prefix
        self.gateway: LwM2MGateway | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.prefix}>"

    def object_links(self) -> str:
        """``/25/x/3``: the device's objects and instances as a CoRE link list."""
        raise NotImplementedError

    def handle(self, request: Message, ssid: int, peer: Hashable, now: float) -> Result:
        """Answer a request without its prefix; raise CoapRequestError for errors."""
        raise NotImplementedError

    def attached(self, gateway: LwM2MGateway) -> None:
        self.gateway = gateway

    def detached(self) -> None:
        self.gateway = None

    async def start(self) -> None:
        """The gateway started (devices reached over a network connect here)."""

    async def stop(self) -> None:
        """The gateway stops, or the device was removed from it."""

    def objects_changed(self) -> None:
        """The device's object list changed: ``/25/x/3`` and the server follow."""
        if self.gateway is not None:
            self.gateway.end_device_changed(self)


class TreeEndDevice(EndDevice):
    """An end device made of :class:`~aiolwm2m.client.instance.Instance` objects, served
    by the client library's own Device Management code (every operation, observations
    with notification attributes, composite operations)."""

    def __init__(self, prefix: str, instances: Iterable[Instance] = (), *,
                 device_id: str | None = None, model: ModelRegistry | None = None) -> None:
        super().__init__(prefix, device_id)
        self.tree = ObjectTree(model if model is not None else end_device_model())
        for instance in instances:
            self.tree.add(instance, announce=False)
        self.attributes = AttributeStore()
        self.observations = ObservationEngine(self._effective, self.tree.numeric_value)
        self.dm = DeviceManagement(self.tree, self.attributes, self.observations,
                                   AccessRights(self.tree), self._defaults)
        self.tree.value_listeners.append(self._value_changed)
        self.tree.structure_listeners.append(self.objects_changed)

    def instance(self, object_id: int, instance_id: int = 0) -> Instance:
        inst = self.tree.get(object_id, instance_id)
        if inst is None:
            raise KeyError(f"/{self.prefix}/{object_id}/{instance_id}")
        return inst

    def add_object(self, instance: Instance) -> Instance:
        """Add an instance at run time; the server learns it through ``/25/x/3``."""
        return self.tree.add(instance)

    def remove_object(self, object_id: int, instance_id: int) -> None:
        self.tree.remove(object_id, instance_id)
        self.observations.remove_under(LwM2MPath(object_id, instance_id))

    def object_links(self) -> str:
        return encode_object_list(self.tree.object_entries()).decode("utf-8")

    def handle(self, request: Message, ssid: int, peer: Hashable, now: float) -> Result:
        return self.dm.handle(request, ssid, peer, now)

    def attached(self, gateway: LwM2MGateway) -> None:
        super().attached(gateway)
        self.tree.control = gateway.tree.control
        self.tree.spawner = gateway.spawn

    def detached(self) -> None:
        super().detached()
        self.tree.spawner = None

    def _value_changed(self, path: LwM2MPath) -> None:
        gateway = self.gateway
        if gateway is not None and len(self.observations) and (
                self.observations.value_changed(path, gateway.clock.now())):
            gateway.notifier.poke()

    def _defaults(self, ssid: int) -> NotificationAttributes:
        if self.gateway is None:
            return NotificationAttributes()
        return self.gateway.server_defaults(ssid)

    def _effective(self, ssid: int, path: LwM2MPath) -> NotificationAttributes:
        return self.attributes.effective(ssid, path, self._defaults(ssid))
