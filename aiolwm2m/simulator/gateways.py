"""Simulated LwM2M Gateways: what ``aiolwm2m simulate --gateways G --end-devices N`` runs
next to (or instead of) the fleet of plain devices.

Each gateway is the client library's :class:`aiolwm2m.gateway.LwM2MGateway` with its own
socket, fronting ``end_devices`` simulated end devices (``/dev0/3303/0/5700`` ...) whose
temperatures drift. Gateways are few and heavy where fleet devices are many and light, so
they use the full client rather than the fleet's shared message layer: what a server sees of
them is exactly what it sees of a real gateway built on this library.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiolwm2m.client import ClientConfig
from aiolwm2m.coap.uri import parse_uri
from aiolwm2m.gateway import LwM2MGateway, TreeEndDevice
from aiolwm2m.gateway.simulated import Drift, simulated_end_devices

__all__ = ["GatewayFleet", "GatewayFleetConfig"]

#: Past this, the server's default limit on objects per registration (one /25 instance per
#: end device) would refuse the gateway; the CLI's ``aiolwm2m gateway`` has the same cap.
MAX_END_DEVICES_PER_GATEWAY = 100_000


@dataclass(frozen=True)
class GatewayFleetConfig:
    gateways: int
    server_uri: str
    #: Simulated end devices behind each gateway.
    end_devices: int = 10
    #: Gateway endpoints are ``{endpoint_prefix}{index:06d}``.
    endpoint_prefix: str = "sim-gw-"
    lifetime: int = 300
    #: Seconds between two moves of the end devices' temperatures (0: never).
    drift_interval: float = 5.0
    #: Gateways started per second.
    rate: float = 20.0

    def __post_init__(self) -> None:
        if self.gateways < 0:
            raise ValueError("the number of gateways cannot be negative")
        if not 0 <= self.end_devices <= MAX_END_DEVICES_PER_GATEWAY:
            raise ValueError(f"end devices per gateway: 0 to {MAX_END_DEVICES_PER_GATEWAY}")
        if parse_uri(self.server_uri).scheme != "coap":
            raise ValueError("simulated gateways talk coap:// only")

    def endpoint(self, index: int) -> str:
        return f"{self.endpoint_prefix}{index:06d}"


class GatewayFleet:
    def __init__(self, config: GatewayFleetConfig) -> None:
        self.config = config
        self.gateways: list[LwM2MGateway] = []
        self._devices: list[TreeEndDevice] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def registered(self) -> int:
        return sum(1 for g in self.gateways if g.registered)

    @property
    def end_devices(self) -> int:
        return sum(len(g.end_devices) for g in self.gateways)

    async def start(self) -> None:
        """Start the gateways (at ``rate`` per second; returns once all are started, not
        registered: :attr:`registered` tells how many are)."""
        cfg = self.config
        host = "::" if ":" in parse_uri(cfg.server_uri).host else "0.0.0.0"
        pause = 1.0 / max(cfg.rate, 0.001)
        for index in range(cfg.gateways):
            endpoint = cfg.endpoint(index)
            devices = simulated_end_devices(cfg.end_devices, gateway=endpoint)
            gateway = LwM2MGateway(
                ClientConfig.development(endpoint, cfg.server_uri, lifetime=cfg.lifetime,
                                         host=host),
                end_devices=devices)
            await gateway.start()
            self.gateways.append(gateway)
            self._devices.extend(devices)
            if index + 1 < cfg.gateways:
                await asyncio.sleep(pause)
        if cfg.drift_interval > 0 and self._devices:
            self._tasks.append(asyncio.create_task(
                Drift(self._devices, interval=cfg.drift_interval).run(),
                name="gateway-drift"))

    async def stop(self, *, deregister: bool = True) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        gateways, self.gateways = self.gateways, []
        await asyncio.gather(*(g.stop(deregister=deregister) for g in gateways),
                             return_exceptions=True)
        self._devices.clear()

    def summary(self) -> dict[str, Any]:
        return {"gateways": self.config.gateways, "gateways_registered": self.registered,
                "end_devices": self.end_devices}
