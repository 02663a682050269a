"""Object 3, Device: identity, power, error codes, time, and the Reboot / Factory Reset
executes, which call the hooks the application supplies."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiolwm2m.lwm2m.values import seconds_to_time, time_to_seconds

from ..instance import Instance, execute, resource

Hook = Callable[[], Awaitable[None] | None]

NO_ERROR = 0
LOW_BATTERY = 1
EXTERNAL_POWER_OFF = 2
GPS_FAILURE = 3
LOW_SIGNAL = 4
OUT_OF_MEMORY = 5
SMS_FAILURE = 6
IP_CONNECTIVITY_FAILURE = 7
PERIPHERAL_MALFUNCTION = 8


class DeviceInstance(Instance, object_id=3):
    manufacturer = resource(0, default="aiolwm2m")
    model_number = resource(1, default="aiolwm2m-client")
    serial_number = resource(2)
    firmware_version = resource(3, default="1.0.0")
    available_power_sources = resource(6)
    power_source_voltage = resource(7)
    power_source_current = resource(8)
    battery_level = resource(9)
    memory_free = resource(10)
    error_code = resource(11, default={0: NO_ERROR})
    current_time = resource(13)
    utc_offset = resource(14, default="+00:00")
    timezone = resource(15, default="UTC")
    supported_binding = resource(16, default="UQ")
    device_type = resource(17)
    hardware_version = resource(18)
    software_version = resource(19)
    battery_status = resource(20)
    memory_total = resource(21)

    def __init__(self, iid: int = 0, *, on_reboot: Hook | None = None,
                 on_factory_reset: Hook | None = None, **values: Any) -> None:
        super().__init__(iid, **values)
        self.on_reboot = on_reboot
        self.on_factory_reset = on_factory_reset
        self.time_offset = 0.0
        self.reboots = 0
        self.factory_resets = 0

    def _wall(self) -> float:
        control = self.control
        return control.wall_time() if control is not None else time.time()

    @current_time.reader
    def _now(self) -> Any:
        return seconds_to_time(int(self._wall() + self.time_offset))

    @current_time.on_write
    def _set_now(self, value: Any) -> None:
        self.time_offset = time_to_seconds(value) - self._wall()

    @execute(4)
    async def reboot(self, arguments: str) -> None:
        self.reboots += 1
        await _call(self.on_reboot)

    @execute(5)
    async def factory_reset(self, arguments: str) -> None:
        self.factory_resets += 1
        await _call(self.on_factory_reset)

    @execute(12)
    def reset_error_code(self, arguments: str) -> None:
        self.set(11, {0: NO_ERROR})

    def add_error(self, code: int) -> None:
        """Report an error code (/3/0/11); the "no error" entry goes away."""
        current = {k: v for k, v in (self.get(11) or {}).items() if v != NO_ERROR}
        if code not in current.values():
            current[max(current, default=-1) + 1] = code
        self.set(11, current or {0: NO_ERROR})


async def _call(hook: Hook | None) -> None:
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        await result
