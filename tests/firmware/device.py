"""A device for the firmware tests: our client library with Object 5, whose "installation"
sets the firmware version (/3/0/3) and, like a real device, may reboot (register again)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiolwm2m.client import (
    ClientConfig,
    DeviceInstance,
    FirmwareUpdateInstance,
    LwM2MClient,
    TemperatureInstance,
)
from aiolwm2m.coap.params import TransmissionParameters

FAST = TransmissionParameters(ack_timeout=0.3, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=5.0)

#: What installing an image does: ``ok`` (Update Result 1, stays registered), ``reboot``
#: (registers again with the new version), ``fail`` (Update Result 8), ``old`` (reboots
#: with the old version), ``silent`` (goes away and never comes back).
BEHAVIOURS = ("ok", "reboot", "fail", "old", "silent")


@dataclass
class FirmwareDevice:
    endpoint: str
    uri: str
    version: str = "1.0.0"
    new_version: str = "2.0.0"
    behaviour: list[str] = field(default_factory=lambda: ["ok"])
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    firmware_kwargs: dict[str, Any] = field(default_factory=dict)
    installed: list[bytes] = field(default_factory=list)
    client: LwM2MClient | None = None
    _reboots: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> LwM2MClient:
        kwargs = {"host": "::1", "transmission": FAST, **self.client_kwargs}
        config = ClientConfig.development(self.endpoint, self.uri, **kwargs)
        firmware = FirmwareUpdateInstance(0, updater=self._install, **self.firmware_kwargs)
        self.client = LwM2MClient(config, objects=[
            DeviceInstance(0, firmware_version=self.version), TemperatureInstance(0), firmware])
        await self.client.start()
        await self.client.wait_registered(10)
        return self.client

    async def stop(self) -> None:
        for task in list(self._reboots):
            await task
        if self.client is not None:
            await self.client.stop(deregister=False)
            self.client = None

    async def _install(self, image: bytes) -> bool:
        self.installed.append(image)
        what = self.behaviour.pop(0) if len(self.behaviour) > 1 else self.behaviour[0]
        if what == "fail":
            return False
        if what in ("reboot", "old", "silent"):
            if what == "reboot":
                self.version = self.new_version
            task = asyncio.get_running_loop().create_task(self._reboot(what != "silent"))
            self._reboots.add(task)
            task.add_done_callback(self._reboots.discard)
            return True
        assert self.client is not None
        self.client.instance(3).set(3, self.new_version)
        self.version = self.new_version
        return True

    async def _reboot(self, come_back: bool) -> None:
        await asyncio.sleep(0.05)
        if self.client is not None:
            await self.client.stop(deregister=False)
            self.client = None
        if come_back:
            await self.start()
