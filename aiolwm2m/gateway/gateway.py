"""The client-side LwM2M Gateway: an LwM2M client that fronts end devices.

::

    gateway = LwM2MGateway(ClientConfig.development("gw-1", "coap://server"),
                           end_devices=[TreeEndDevice("dev1", [TemperatureInstance(0)])])
    async with gateway:
        await gateway.wait_registered()
        gateway.add_end_device(TreeEndDevice("dev2", [TemperatureInstance(0)]))

The server reaches ``dev1``'s temperature as ``/dev1/3303/0/5700``: every Device
Management operation, Observe and composite operation carrying a prefix goes to that end
device (an unknown prefix is 4.04). Each end device has an instance of Object 25 (``/25/x``:
device id, prefix, its objects as a link list); adding or removing one adds or removes the
instance, and the gateway's registrations learn it through an Update. ``/25`` itself is the
gateway's to manage: the server may read and observe it, not create or delete instances.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Hashable, Iterable
from typing import Any

from aiolwm2m.client.client import LwM2MClient
from aiolwm2m.client.config import ClientConfig
from aiolwm2m.client.instance import Instance
from aiolwm2m.client.notifier import split_key
from aiolwm2m.client.server_session import ServerSession
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, MethodNotAllowed, NotFound, ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.lwm2m.formats.prefixed_names import join
from aiolwm2m.transport.site import HeldResponse, RenderResult

from .end_device import EndDevice
from .notifier import GatewayNotifier
from .object25 import GATEWAY_OBJECT, GatewayInstance
from .request_routing import (
    composite_groups,
    inner_request,
    outer_result,
    prefix_of,
)

log = logging.getLogger(__name__)

__all__ = ["LwM2MGateway"]

_GATEWAY_PATH = str(GATEWAY_OBJECT)
# Observed requests whose end-device form is kept (see _inner): at most this many beyond
# the observations the end devices hold, before the stale ones are swept.
_INNER_SLACK = 64


class LwM2MGateway(LwM2MClient):
    def __init__(self, config: ClientConfig, objects: Iterable[Instance] = (), *,
                 end_devices: Iterable[EndDevice] = ()) -> None:
        super().__init__(config, objects)
        self.tree.register_class(GatewayInstance)
        #: The end devices, by prefix.
        self.end_devices: dict[str, EndDevice] = {}
        self._instances: dict[str, GatewayInstance] = {}
        #: End devices holding observations (the notifier polls only these).
        self.observed: set[EndDevice] = set()
        # (peer, token) -> (request as received, its end-device form): an observed request
        # is rendered again for every notification, and the end device must see the same
        # request object each time (that is how it tells a notification from a new Observe).
        self._inner: dict[tuple[Hashable, bytes], tuple[Message, Message]] = {}
        self.notifier = GatewayNotifier(self)
        self.add_end_devices(end_devices)

    # -- end devices ----------------------------------------------------------------------

    def add_end_device(self, device: EndDevice) -> EndDevice:
        """Front ``device``: a ``/25`` instance appears (and the servers get an Update)."""
        self.add_end_devices((device,))
        return device

    def add_end_devices(self, devices: Iterable[EndDevice]) -> None:
        """Front several devices with one Update. A prefix already in use raises
        ValueError, and then none of them is added."""
        batch = list(devices)
        seen = set(self.end_devices)
        for device in batch:
            if device.prefix in seen:
                raise ValueError(f"prefix {device.prefix!r} is already in use")
            seen.add(device.prefix)
        if not batch:
            return
        used = set(self.tree.objects.get(GATEWAY_OBJECT, {}))
        next_iid = 0
        for device in batch:
            while next_iid in used:
                next_iid += 1
            used.add(next_iid)
            inst = GatewayInstance(next_iid, device_id=device.device_id, prefix=device.prefix,
                                   iot_device_objects=device.object_links())
            self.tree.add(inst, announce=False)
            self._instances[device.prefix] = inst
            self.end_devices[device.prefix] = device
            device.attached(self)
            if self.started:
                self.spawn(device.start())
        self.tree._structure_changed()

    def remove_end_device(self, prefix: str) -> EndDevice:
        """Stop fronting the device: its ``/25`` instance goes (an Update follows) and the
        server's observations of it end with 4.04."""
        device = self.end_devices.pop(prefix, None)
        if device is None:
            raise KeyError(prefix)
        inst = self._instances.pop(prefix)
        self.tree.remove(GATEWAY_OBJECT, inst.iid)
        self._end_observations(device)
        device.detached()
        if self.started:
            self.spawn(device.stop())
        return device

    def end_device(self, prefix: str) -> EndDevice:
        device = self.end_devices.get(prefix)
        if device is None:
            raise KeyError(prefix)
        return device

    def end_device_changed(self, device: EndDevice) -> None:
        """The device's objects changed: it is announced anew, under a new ``/25``
        instance. Servers learn of ``/25`` changes from the instance list of an Update;
        a changed ``/25/x/3`` alone would go unnoticed unless they observed every one."""
        old = self._instances.get(device.prefix)
        if old is None or self.end_devices.get(device.prefix) is not device:
            return
        iid = self._free_iid(avoid=old.iid)
        inst = GatewayInstance(iid, device_id=device.device_id, prefix=device.prefix,
                               iot_device_objects=device.object_links())
        self.tree.remove(GATEWAY_OBJECT, old.iid, announce=False)
        self.tree.add(inst, announce=False)
        self._instances[device.prefix] = inst
        self.tree._structure_changed()

    def _free_iid(self, avoid: int = -1) -> int:
        used = self.tree.objects.get(GATEWAY_OBJECT, {})
        iid = 0
        while iid in used or iid == avoid:
            iid += 1
        return iid

    def _end_observations(self, device: EndDevice) -> None:
        """Tell the device's observers it is gone (4.04 ends their observations)."""
        self.observed.discard(device)
        for obs in list(device.observations):
            device.observations.remove(obs.key)
            peer, token = split_key(obs)
            self._inner.pop((peer, token), None)
            session = self.sessions.get(obs.ssid)
            link = session.link if session is not None else None
            if link is None or link.closed:
                continue
            transport_observation = link.dispatcher.observers.get(peer, token)
            if transport_observation is not None:
                link.dispatcher.notify_observation(transport_observation)

    def spawn(self, work: Awaitable[Any]) -> None:
        self._tasks.spawn(work)

    def server_defaults(self, ssid: int) -> NotificationAttributes:
        """pmin/pmax of server ``ssid`` (its Server object instance), for end devices."""
        return self._server_defaults(ssid)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        # Together: a CoAP node that does not answer must not hold the others back for
        # its timeout (in-process trees start at once).
        await asyncio.gather(*(device.start() for device in list(self.end_devices.values())))

    async def stop(self, *, deregister: bool = True) -> None:
        for device in list(self.end_devices.values()):
            await device.stop()
        await super().stop(deregister=deregister)

    # -- requests -------------------------------------------------------------------------

    def _device_management(self, request: Message, session: ServerSession) -> RenderResult:
        segments = request.uri_path
        prefix = prefix_of(segments)
        if prefix is None:
            code = request.code
            if (code == Code.FETCH or code == Code.IPATCH) and (
                    not segments or segments == ("",)) and request.payload:
                return self._composite(request, session)
            if segments and segments[0] == _GATEWAY_PATH and (
                    code == Code.DELETE or (code == Code.POST and len(segments) == 1)):
                raise MethodNotAllowed("the gateway manages /25 itself")
            return super()._device_management(request, session)
        if self.bootstrapping:
            raise ServiceUnavailable("bootstrapping")
        device = self.end_devices.get(prefix)
        if device is None:
            raise NotFound(f"no end device with prefix {shown(prefix, 24)}")
        return self._to_device(device, request, session, None)

    def _to_device(self, device: EndDevice, request: Message, session: ServerSession,
                   payload: bytes | None) -> RenderResult:
        peer = request.remote
        inner = self._inner_form(device, request, payload)
        try:
            result = device.handle(inner, session.ssid, peer, self.clock.now())
        finally:
            # Only a device holding observations can have moved the notifier's deadlines
            # (a new one, new attributes); one that lost its last is dropped by the
            # notifier's next round. Reads of quiet devices leave the notifier asleep.
            if len(device.observations):
                self.observed.add(device)
                self.notifier.poke()
        return outer_result(result, device.prefix)

    def _inner_form(self, device: EndDevice, request: Message, payload: bytes | None
                    ) -> Message:
        key = (request.remote, request.token)
        cached = self._inner.get(key)
        if cached is not None and cached[0] is request:
            return cached[1]
        inner = inner_request(request, device.prefix, payload)
        if request.observe == 0:
            if len(self._inner) > self._observation_count() + _INNER_SLACK:
                self._sweep_inner()
            self._inner[key] = (request, inner)
        elif cached is not None:
            del self._inner[key]
        return inner

    def forget_inner(self, key: Hashable) -> None:
        """An end device's observation ended: its request need not be kept."""
        self._inner.pop(key, None)  # type: ignore[call-overload]

    def _observation_count(self) -> int:
        return sum(len(d.observations) for d in self.observed)

    def _sweep_inner(self) -> None:
        """Forget the requests of observations that ended."""
        live = {obs.key for d in self.observed for obs in d.observations}
        for key in [k for k in self._inner if k not in live]:
            del self._inner[key]

    def _composite(self, request: Message, session: ServerSession) -> RenderResult:
        groups = composite_groups(request)
        if set(groups) == {None}:
            return super()._device_management(request, session)
        if len(groups) == 1:
            prefix = next(iter(groups))
            assert prefix is not None
            device = self.end_devices.get(prefix)
            if device is None:
                raise NotFound(f"no end device with prefix {shown(prefix, 24)}")
            return self._to_device(device, request, session, groups[prefix])
        if request.code != Code.FETCH or request.observe is not None:
            raise BadRequest("a Write-Composite or Observe-Composite names paths of one "
                             "device (the gateway or one end device)")
        return self._read_across(request, session, groups)

    async def _read_across(self, request: Message, session: ServerSession,
                           groups: dict[str | None, bytes]) -> Message:
        """A Read-Composite naming several devices: each answers its part, the parts are
        joined (paths that exist nowhere are left out, as for one device)."""
        parts: list[bytes] = []
        fmt: int | None = None
        for prefix, payload in groups.items():
            try:
                if prefix is None:
                    own = request.copy()
                    own.payload = payload
                    answer = await _settled(super()._device_management(own, session))
                else:
                    device = self.end_devices.get(prefix)
                    if device is None:
                        continue
                    answer = await _settled(self._to_device(device, request, session,
                                                            payload))
            except NotFound:
                continue
            if answer.code == Code.CONTENT:
                fmt = answer.content_format
                parts.append(answer.payload)
        if fmt is None:
            raise NotFound("none of the requested paths exists")
        return request.response(Code.CONTENT, join(fmt, parts), fmt)


async def _settled(result: RenderResult) -> Message:
    """The Message a render result comes to (the client's interfaces hold none back)."""
    answer = result if isinstance(result, Message | HeldResponse) else await result
    if isinstance(answer, HeldResponse):
        raise TypeError("a held response where a plain one was expected")
    return answer
