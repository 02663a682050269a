"""A fleet of simulated LwM2M devices in one process.

Each device has its own UDP socket (so the server sees distinct addresses), but the fleet
shares one CoAP message layer, one epoll reader, one timer wheel, one object model and one
Register payload. A device is a slotted object of a dozen fields; its object tree is built
from the client library's objects only while a server talks to it.

Per device: optional client-initiated bootstrap, Register, Updates before the lifetime ends
(with exponential back-off and jitter on failure), a Send of its temperature every
``send_interval`` seconds, and answers to the server's requests, observations included.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.client.registration import (
    CLIENT_LWM2M_VERSIONS,
    RegistrationParams,
    announced_formats,
    bootstrap_request,
    deregister_request,
    object_links,
    register_request,
    update_due,
    update_request,
)
from aiolwm2m.client.tree import client_model
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.lwm2m.formats import encode_timestamped
from aiolwm2m.lwm2m.nodes import SingleResource, TimestampedNodes
from aiolwm2m.lwm2m.values import ResourceType

from .device import (
    BOOTSTRAPPING,
    REGISTERED,
    REGISTERING,
    RETRYING,
    STOPPED,
    ServerTarget,
    SimDevice,
)
from .device_model import TEMPERATURE_PATH, DeviceModel, model_links
from .firmware import K_FIRMWARE, FleetFirmware
from .fleet_transport import FleetTransport
from .http2_transport import Http2FleetTransport
from .limits import raise_file_limit
from .profile import FleetProfile
from .served_requests import ServedRequests
from .stats import FleetStats
from .timer_wheel import TimerWheel

if TYPE_CHECKING:
    from aiolwm2m.simulator.nidd_fleet_link import NiddFleetLink

log = logging.getLogger(__name__)

K_BOOTSTRAP, K_REGISTER, K_UPDATE, K_SEND, K_DEREGISTER = range(5)
_TICK = 0.1


@dataclass(frozen=True)
class FleetConfig:
    count: int
    server_uri: str
    bootstrap_uri: str | None = None
    #: Devices started per second.
    rate: float = 200.0
    profile: FleetProfile = field(default_factory=FleetProfile)
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    seed: int | None = None
    #: The version the devices register as ("1.1" or "1.2", which lists formats).
    lwm2m_version: str = "1.1"
    #: The content formats the Register names (``ct``), as for
    #: :attr:`aiolwm2m.client.ClientConfig.content_formats`: None for the default (1.1:
    #: SenML JSON), one under 1.1, () for none.
    content_formats: tuple[int, ...] | None = None
    #: Non-IP devices on a SCEF emulator's UE socket (binding N) instead of UDP sockets;
    #: ``server_uri`` is then not used (``aiolwm2m.simulator.nidd_fleet_link.NiddFleetLink``).
    nidd: NiddFleetLink | None = None
    #: Object trees kept built after a request that left them without state of their own,
    #: the most recently used first: a device read again soon is answered without building
    #: its tree again (that took a quarter of the simulator's CPU under REST reads). Bounded
    #: so that a large fleet stays a few hundred bytes a device; 0 drops every such tree.
    warm_models: int = 256

    def __post_init__(self) -> None:
        if self.lwm2m_version not in CLIENT_LWM2M_VERSIONS:
            raise ValueError(f"lwm2m_version is one of {', '.join(CLIENT_LWM2M_VERSIONS)}, "
                             f"not {self.lwm2m_version!r}")
        announced_formats(self.lwm2m_version, self.content_formats)


def _resolve(uri: str, ssid: int = 0) -> ServerTarget:
    parsed = parse_uri(uri)
    if parsed.scheme not in ("coap", "http2"):
        raise ValueError(f"{parsed.scheme}:// is not supported by the simulator")
    kind = socket.SOCK_DGRAM if parsed.scheme == "coap" else socket.SOCK_STREAM
    infos = socket.getaddrinfo(parsed.host, parsed.port, type=kind)
    family = socket.AF_INET if ":" not in parsed.host else socket.AF_INET6
    chosen = [i for i in infos if i[0] == family] or infos
    return ServerTarget(uri, tuple(chosen[0][4]), ssid)


class Fleet:
    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.profile = config.profile
        self.rng = random.Random(config.seed)
        self.model = client_model()
        self.stats = FleetStats(config.count)
        self.devices: list[SimDevice] = []
        self.wheel = TimerWheel(_TICK)
        self.server: ServerTarget = (_resolve(config.server_uri, 1) if config.nidd is None
                                     else config.nidd.server_target())
        self.bootstrap: ServerTarget | None = (
            _resolve(config.bootstrap_uri) if config.bootstrap_uri else None)
        self.links = object_links(model_links(self), announced_formats(
            config.lwm2m_version, config.content_formats))
        self._targets: dict[str, ServerTarget] = {self.server.uri: self.server}
        #: The binding letter the devices register with: U, or H over HTTP/2.
        self._binding = "H" if parse_uri(config.server_uri).scheme == "http2" else "U"
        if config.nidd is not None:
            self._binding = "N"
        self._transport: FleetTransport | Http2FleetTransport | None = None
        self.served = ServedRequests(self)
        self.firmware = FleetFirmware(self)
        self._ticker: asyncio.TimerHandle | None = None
        self._starter: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(log, "fleet task")
        self._wall_offset = time.time() - time.monotonic()
        self.started_at = 0.0
        self.running = False

    # -- clocks and helpers -----------------------------------------------------------------

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.monotonic() + self._wall_offset

    def temperature(self, index: int) -> float:
        return self.profile.temperature(index, self.wall())

    @property
    def transport(self) -> FleetTransport | Http2FleetTransport:
        if self._transport is None:
            raise RuntimeError("the fleet is not started")
        return self._transport

    def spawn(self, work: Awaitable[Any]) -> None:
        self._tasks.spawn(work)

    def _target(self, uri: str, ssid: int) -> ServerTarget:
        found = self._targets.get(uri)
        if found is None or found.ssid != ssid:
            found = _resolve(uri, ssid)
            self._targets[uri] = found
        return found

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        count = self.config.count
        host = str(self.server.address[0])
        if self.config.nidd is not None:
            self._transport = FleetTransport(
                self, count, host, self.config.transmission,
                pool=self.config.nidd.pool_factory(self.profile.endpoint))
        elif parse_uri(self.server.uri).scheme == "http2":
            # LwM2M over HTTP/2: a connection per device (aiolwm2m.http2).
            self._transport = Http2FleetTransport(self, count, host)
        else:
            self._transport = FleetTransport(self, count, host, self.config.transmission)
        if not self._transport.shared:
            limit = raise_file_limit(count + 64)
            if limit < count + 64:
                self._transport.close()
                raise RuntimeError(
                    f"{count} devices need {count + 64} file descriptors here, the limit is "
                    f"{limit}: raise the hard limit (ulimit -Hn) or use a loopback IPv4 "
                    "server, where devices share sockets")
        self.started_at = self.now()
        self.stats.started_at = self.started_at
        self.running = True
        self._ticker = asyncio.get_running_loop().call_later(_TICK, self._tick)
        self._starter = asyncio.create_task(self._start_devices(), name="fleet-starter")

    async def _start_devices(self) -> None:
        rate = max(self.config.rate, 0.001)
        begin = self.now()
        for index in range(self.config.count):
            due = begin + index / rate
            delay = due - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.running:
                return
            device = SimDevice(index)
            self.devices.append(device)
            try:
                self.transport.pool.open(index)
            except OSError as e:
                log.error("device %d: no socket: %s", index, e)
                self.stats.socket_errors += 1
                self._set_state(device, STOPPED)
                continue
            self.stats.sockets += 1
            self._begin(device)
        self.stats.all_started_at = self.now()

    async def stop(self, *, deregister: bool | None = None, timeout: float = 30.0) -> None:
        if not self.running:
            return
        self.running = False
        if self._starter is not None:
            self._starter.cancel()
            try:
                await self._starter
            except asyncio.CancelledError:
                pass
        if self._ticker is not None:
            self._ticker.cancel()
        if deregister if deregister is not None else self.profile.deregister_on_stop:
            await self._deregister_all(timeout)
        self._tasks.cancel_all()
        self.transport.close()

    async def _deregister_all(self, timeout: float) -> None:
        registered = [d for d in self.devices if d.state == REGISTERED]
        rate = max(self.config.rate, 1000.0)
        begin = self.now()
        for i, device in enumerate(registered):
            if self.now() - begin > timeout:
                break
            device.state = STOPPED
            self._request(device, deregister_request(device.location_path), K_DEREGISTER)
            if i % 100 == 99:
                await asyncio.sleep(max(0.0, begin + (i + 1) / rate - self.now()))
        deadline = self.now() + min(timeout, 10.0)
        while self.transport.pending_exchanges and self.now() < deadline:
            await asyncio.sleep(0.05)

    # -- state ------------------------------------------------------------------------------

    def _set_state(self, device: SimDevice, state: int) -> None:
        self.stats.moved(device.state, state)
        device.state = state

    def _schedule(self, device: SimDevice, at: float) -> None:
        self.wheel.schedule(device, at)

    def _tick(self) -> None:
        now = self.now()
        for device in self.wheel.due(now):
            try:
                self._wake(device, now)  # type: ignore[arg-type]
            except Exception:
                log.exception("device %s failed on its timer", device)
        if self.running:
            self._ticker = asyncio.get_running_loop().call_later(_TICK, self._tick)

    def _wake(self, device: SimDevice, now: float) -> None:
        state = device.state
        if state == RETRYING:
            self._begin(device)
        elif state == BOOTSTRAPPING:
            self._failed(device, "no Bootstrap-Finish in time")
        elif state == REGISTERED:
            self._registered_wake(device, now)

    def _begin(self, device: SimDevice) -> None:
        if self.bootstrap is not None and device.server is None:
            self._begin_bootstrap(device)
        else:
            self._begin_register(device)

    def _failed(self, device: SimDevice, reason: str) -> None:
        policy = self.profile.retry
        delay = policy.base_delay(device.failures)
        delay = max(policy.minimum, delay * (1 + policy.jitter * (2 * self.rng.random() - 1)))
        device.failures += 1
        device.extras = None
        self.stats.failures += 1
        self.stats.last_failure = reason
        self._set_state(device, RETRYING)
        self._schedule(device, self.now() + delay)

    def _request(self, device: SimDevice, message: Message, kind: int,
                 target: ServerTarget | None = None) -> None:
        to = target or device.server or self.server
        self.transport.request(device.index, message, to.address, (device, kind))

    # -- bootstrap ------------------------------------------------------------------------

    def _begin_bootstrap(self, device: SimDevice) -> None:
        assert self.bootstrap is not None
        self._set_state(device, BOOTSTRAPPING)
        device.extras = DeviceModel(self, device, bootstrapping=True)
        self._request(device, bootstrap_request(self.profile.endpoint(device.index)),
                      K_BOOTSTRAP, self.bootstrap)
        self._schedule(device, self.now() + self.profile.bootstrap_timeout)

    def _bootstrapped(self, device: SimDevice, model: DeviceModel) -> None:
        account = model.server_account()
        device.extras = None
        if account is None:
            self._failed(device, "bootstrap gave no server account")
            return
        uri, ssid, lifetime = account
        try:
            device.server = self._target(uri, ssid)
        except (ValueError, OSError) as e:
            self._failed(device, f"bootstrapped server {uri}: {e}")
            return
        device.lifetime = lifetime or self.profile.lifetime
        self.stats.bootstrapped += 1
        self._begin_register(device)

    def rebootstrap(self, device: SimDevice) -> None:
        if self.bootstrap is None:
            return
        device.server = None
        self._set_state(device, RETRYING)
        self._schedule(device, self.now() + 0.5)

    # -- registration -----------------------------------------------------------------------

    def _params(self, device: SimDevice) -> RegistrationParams:
        if not device.lifetime:
            device.lifetime = self.profile.lifetime
        return RegistrationParams(self.profile.endpoint(device.index), device.lifetime,
                                  self._binding, lwm2m_version=self.config.lwm2m_version)

    def _begin_register(self, device: SimDevice) -> None:
        if device.server is None:
            device.server = self.server
        self._set_state(device, REGISTERING)
        self._request(device, register_request(self._params(device), self.links), K_REGISTER)

    def _registered_wake(self, device: SimDevice, now: float) -> None:
        mtw = self.config.transmission.max_transmit_wait
        if now >= update_due(device.updated_at, device.lifetime, mtw) and (
                not device.update_pending):
            self._send_update(device)
        if now >= device.next_send:
            self._send_values(device)
            device.next_send = now + self.profile.send_interval
        model = device.extras
        if isinstance(model, DeviceModel) and len(model.observations):
            model.observations.value_changed(TEMPERATURE_PATH, now)
            self.served.notify(device, model, now)
        self.schedule_next(device, now)

    def schedule_next(self, device: SimDevice, now: float) -> None:
        mtw = self.config.transmission.max_transmit_wait
        at = min(update_due(device.updated_at, device.lifetime, mtw), device.next_send)
        model = device.extras
        if isinstance(model, DeviceModel) and len(model.observations):
            at = min(at, now + self.profile.sample_period)
            deadline = model.observations.next_deadline()
            if deadline is not None:
                at = min(at, deadline)
        if device.update_pending:
            at = max(at, now + _TICK)
        self._schedule(device, max(at, now))

    def _send_update(self, device: SimDevice, *, lifetime: bool = False) -> None:
        device.update_pending = True
        msg = update_request(device.location_path,
                             lifetime=device.lifetime if lifetime else None)
        self._request(device, msg, K_UPDATE)

    def request_update(self, device: SimDevice) -> None:
        """Send an Update (with the lifetime) once the current response has gone out."""
        if device.state == REGISTERED:
            asyncio.get_running_loop().call_soon(self._update_now, device)

    def _update_now(self, device: SimDevice) -> None:
        if device.state == REGISTERED:
            self._send_update(device, lifetime=True)

    def disable(self, device: SimDevice, seconds: float) -> None:
        if device.state != REGISTERED:
            return
        self._request(device, deregister_request(device.location_path), K_DEREGISTER)
        self._set_state(device, RETRYING)
        self._schedule(device, self.now() + seconds)

    def _send_values(self, device: SimDevice) -> None:
        node = SingleResource(5700, ResourceType.FLOAT, self.temperature(device.index))
        payload = encode_timestamped(self.profile.send_format, [
            TimestampedNodes(self.wall(), {TEMPERATURE_PATH: node})])
        msg = Message.request(Code.POST, ["dp"], payload=payload,
                              content_format=self.profile.send_format)
        self._request(device, msg, K_SEND)

    # -- responses to the devices' requests -------------------------------------------------

    def on_response(self, user: Any, response: Message) -> None:
        device, kind = user
        if kind == K_FIRMWARE:
            self.firmware.on_response(device, response)
            return
        now = self.now()
        code = response.code
        stats = self.stats
        if kind == K_REGISTER:
            if device.state != REGISTERING:
                return
            if code != Code.CREATED or not response.location_path:
                self._failed(device, f"Register answered {code >> 5}.{code & 31:02d}")
                return
            device.location = "/".join(response.location_path)
            device.updated_at = now
            device.failures = 0
            device.update_pending = False
            if device.next_send == 0.0:
                device.next_send = now + self.profile.send_phase(device.index)
            self._set_state(device, REGISTERED)
            stats.registrations += 1
            stats.last_registered_at = now
            self.schedule_next(device, now)
        elif kind == K_UPDATE:
            device.update_pending = False
            if device.state != REGISTERED:
                return
            if code == Code.CHANGED:
                device.updated_at = now
                stats.updates += 1
                self.schedule_next(device, now)
            else:
                stats.update_failures += 1
                self._begin_register(device)
        elif kind == K_SEND:
            if code == Code.CHANGED:
                stats.sends += 1
            else:
                stats.send_failures += 1
        elif kind == K_BOOTSTRAP:
            if code != Code.CHANGED and device.state == BOOTSTRAPPING:
                self._failed(device, f"Bootstrap-Request answered {code >> 5}."
                                     f"{code & 31:02d}")
        elif kind == K_DEREGISTER:
            stats.deregistrations += 1

    def on_failure(self, user: Any, error: CoapError) -> None:
        device, kind = user
        if kind == K_FIRMWARE:
            self.firmware.on_failure(device, error)
            return
        if kind == K_REGISTER and device.state == REGISTERING:
            self._failed(device, f"Register: {error}")
        elif kind == K_UPDATE:
            device.update_pending = False
            self.stats.update_failures += 1
            if device.state == REGISTERED:
                self._begin_register(device)
        elif kind == K_SEND:
            self.stats.send_failures += 1
        elif kind == K_BOOTSTRAP and device.state == BOOTSTRAPPING:
            self._failed(device, f"Bootstrap-Request: {error}")

    def on_rejected(self, index: int, token: bytes) -> None:
        device = self.devices[index]
        model = device.extras
        if isinstance(model, DeviceModel):
            for obs in list(model.observations):
                if obs.request.token == token:
                    model.observations.remove(obs.key)
            if not model.needed and device.state != BOOTSTRAPPING:
                device.extras = None

    # -- requests from the servers (see .served_requests) ---------------------------------

    def on_request(self, index: int, request: Message) -> None:
        self.served.on_request(self.devices[index], request)

    def bootstrapped(self, device: SimDevice, model: DeviceModel) -> None:
        self._bootstrapped(device, model)

def _key(address: tuple[Any, ...]) -> tuple[str, int]:
    return str(address[0]), int(address[1])
