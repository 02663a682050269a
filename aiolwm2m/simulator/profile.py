"""What every simulated device has in common: names, timings, the temperature model.

Behaviour is shared and parameterised by the device index, so a device itself only keeps
the state that differs (see :mod:`.device`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aiolwm2m.client.backoff import RetryPolicy
from aiolwm2m.lwm2m.formats import ContentFormat

from .firmware import SimFirmwareProfile


@dataclass(frozen=True)
class FleetProfile:
    endpoint_prefix: str = "sim-"
    lifetime: int = 300
    #: Seconds between two Sends of a device (each device starts at its own phase).
    send_interval: float = 300.0
    send_format: int = ContentFormat.SENML_CBOR
    #: How often an observed temperature is sampled for its observers.
    sample_period: float = 5.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(
        initial=5.0, maximum=300.0, jitter=0.5, attempts_before_fallback=0))
    bootstrap_timeout: float = 60.0
    #: When true, each device sends a De-register when the fleet stops.
    deregister_on_stop: bool = True
    #: Firmware updates: the version before, timings, injected failures (see .firmware).
    firmware: SimFirmwareProfile = field(default_factory=SimFirmwareProfile)

    def endpoint(self, index: int) -> str:
        return f"{self.endpoint_prefix}{index:06d}"

    def send_phase(self, index: int) -> float:
        """Where in the Send period device ``index`` sends (spreads the fleet's load)."""
        return (index * 0.6180339887 % 1.0) * self.send_interval

    def temperature(self, index: int, t: float) -> float:
        """A slow daily-like swing, a faster wobble and a per-device offset (°C)."""
        base = 18.0 + (index % 97) * 0.05
        phase = (index * 0.37) % (2 * math.pi)
        value = (base + 3.0 * math.sin(2 * math.pi * t / 600.0 + phase)
                 + 0.3 * math.sin(2 * math.pi * t / 37.0 + index))
        return round(value, 2)
