"""Simulated end devices: what ``aiolwm2m gateway --end-devices N`` and the simulator put
behind a gateway. Each is a small object tree (Device and a Temperature sensor whose value
drifts) that costs a few kilobytes, so a gateway can front thousands."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable

from aiolwm2m.client.objects import DeviceInstance, TemperatureInstance

from .end_device import TreeEndDevice

__all__ = ["Drift", "simulated_end_devices"]


def simulated_end_devices(count: int, *, gateway: str = "gw", start: int = 0,
                          prefix: str = "dev") -> list[TreeEndDevice]:
    """``count`` end devices ``dev{start}`` ... with ids ``urn:dev:ops:{gateway}-{i}``."""
    devices = []
    for i in range(start, start + count):
        devices.append(TreeEndDevice(
            f"{prefix}{i}",
            [DeviceInstance(0, manufacturer="aiolwm2m", model_number="simulated-end-device",
                            serial_number=f"{gateway}-{i}", supported_binding="U"),
             TemperatureInstance(0, sensor_value=round(20.0 + (i % 50) / 10, 1))],
            device_id=f"urn:dev:ops:{gateway}-{i}"))
    return devices


class Drift:
    """Moves the temperature of ``per_tick`` devices every ``interval`` seconds (a slow
    sine plus noise), so that observers of simulated end devices see changes."""

    def __init__(self, devices: Iterable[TreeEndDevice], *, interval: float = 5.0,
                 per_tick: int = 100, seed: int | None = None) -> None:
        self.devices = list(devices)
        self.interval = interval
        self.per_tick = max(1, per_tick)
        self._random = random.Random(seed)
        self._cursor = 0
        self._ticks = 0

    def tick(self) -> None:
        if not self.devices:
            return
        self._ticks += 1
        for _ in range(min(self.per_tick, len(self.devices))):
            device = self.devices[self._cursor % len(self.devices)]
            self._cursor += 1
            sensor = device.tree.get(3303, 0)
            if isinstance(sensor, TemperatureInstance):
                base = 21.0 + 3.0 * math.sin(self._ticks / 20 + self._cursor)
                sensor.measure(round(base + self._random.uniform(-0.2, 0.2), 1))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
