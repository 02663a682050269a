"""A simulated device answering its servers: Bootstrap and Device Management requests.

The device's object tree (:class:`.device_model.DeviceModel`) is built for the request and
dropped afterwards unless it now holds state of its own (an observation, a write) or is one
of the fleet's most recently used ones (:attr:`.fleet.FleetConfig.warm_models`); the
answers come from the client library's interfaces, so they are what a real
:class:`~aiolwm2m.client.LwM2MClient` would send.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.errors import CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.dispatch import error_response

from .device import BOOTSTRAPPING, REGISTERED, REGISTERING, STOPPED, SimDevice
from .device_model import DeviceModel

if TYPE_CHECKING:
    from .fleet import Fleet

CONFIRM_EVERY = 20


class ServedRequests:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        #: Device index -> its stateless tree, least recently used first.
        self._warm: OrderedDict[int, DeviceModel] = OrderedDict()
        self._warm_limit = fleet.config.warm_models

    def on_request(self, device: SimDevice, request: Message) -> None:
        fleet = self.fleet
        fleet.stats.requests += 1
        if device.state == STOPPED:
            return  # switched off (or gone for good after a firmware update): silent
        source = request.remote[1]
        key = (str(source[0]), int(source[1]))
        try:
            if (device.state == BOOTSTRAPPING and fleet.bootstrap is not None
                    and key == _key(fleet.bootstrap.address)):
                self._bootstrap_request(device, request)
                return
            if device.server is None or key != _key(device.server.address) or (
                    device.state not in (REGISTERED, REGISTERING)):
                raise CoapRequestError("not one of this device's servers",
                                       Code.UNAUTHORIZED)
            self._dm_request(device, request)
        except Exception as e:
            self.fleet.transport.respond(request, error_response(request, e))

    def _model(self, device: SimDevice) -> DeviceModel:
        model = device.extras
        if not isinstance(model, DeviceModel):
            model = DeviceModel(self.fleet, device, bootstrapping=False)
            device.extras = model
            self.fleet.stats.materialised += 1
        return model

    def _bootstrap_request(self, device: SimDevice, request: Message) -> None:
        model = device.extras
        assert isinstance(model, DeviceModel) and model.bootstrap is not None
        response = model.bootstrap.handle(request)
        self.fleet.transport.respond(request, response)
        if model.finished:
            self.fleet.bootstrapped(device, model)

    def _dm_request(self, device: SimDevice, request: Message) -> None:
        model = self._model(device)
        now = self.fleet.now()
        try:
            result = model.dm.handle(request, device.server.ssid if device.server else 1,
                                     request.remote, now)
        except Exception:
            if not model.needed:
                self._release(device, model)
            raise
        if request.code not in (Code.GET, Code.FETCH):
            model.keep = True
            if request.code in (Code.PUT, Code.POST) and len(request.uri_path) >= 2 and (
                    request.uri_path[0] == "1"):
                self._server_object_written(device, model)
        if inspect.isawaitable(result):
            self.fleet.spawn(self._finish_async(device, request, result))
            return
        assert isinstance(result, Message)
        self._answer(device, model, request, result, now)

    async def _finish_async(self, device: SimDevice, request: Message,
                            result: Awaitable[Message]) -> None:
        try:
            response = await result
        except Exception as e:
            response = error_response(request, e)
        model = device.extras
        if isinstance(model, DeviceModel):
            self._answer(device, model, request, response, self.fleet.now())
        else:
            self.fleet.transport.respond(request, response)

    def _answer(self, device: SimDevice, model: DeviceModel, request: Message,
                response: Message, now: float) -> None:
        if request.observe == 0 and 64 <= response.code < 96 and model.observations.get(
                (request.remote, request.token)) is not None:
            response.observe = model.next_sequence()
            self.fleet.schedule_next(device, now)
        self.fleet.transport.respond(request, response)
        if not model.needed:
            self._release(device, model)

    def _release(self, device: SimDevice, model: DeviceModel) -> None:
        """A tree without state of its own: kept among the warm ones, or dropped."""
        warm = self._warm
        warm[device.index] = model
        warm.move_to_end(device.index)
        while len(warm) > self._warm_limit:
            index, old = warm.popitem(last=False)
            other = self.fleet.devices[index]
            # Elsewhere the fleet drops trees itself (reboot, failure, bootstrap): only
            # the tree it still holds, if that one has gained no state since, goes.
            if other.extras is old and not old.needed:
                other.extras = None

    def _server_object_written(self, device: SimDevice, model: DeviceModel) -> None:
        srv = model.tree.get(1, 0)
        if srv is None:
            return
        lifetime = srv.get(1)
        if lifetime and int(lifetime) != device.lifetime:
            device.lifetime = int(lifetime)
            self.fleet.request_update(device)

    def notify(self, device: SimDevice, model: DeviceModel, now: float) -> None:
        for obs in model.observations.poll(now):
            msg = model.dm.render_notification(obs)
            msg.token = obs.request.token
            msg.mtype = MessageType.NON
            if 64 <= msg.code < 96:
                msg.observe = model.next_sequence()
                if model.sequence % CONFIRM_EVERY == 0:
                    # RFC 7641 4.5: now and then a Confirmable one, to notice a server
                    # that is gone (its Reset or silence ends the observation).
                    msg.mtype = MessageType.CON
            else:
                model.observations.remove(obs.key)
            peer = obs.key[0]  # type: ignore[index]
            self.fleet.transport.notify(device.index, peer[1], msg)
            model.observations.notified(obs, now)
            self.fleet.stats.notifications += 1


def _key(address: tuple[Any, ...]) -> tuple[str, int]:
    return str(address[0]), int(address[1])
