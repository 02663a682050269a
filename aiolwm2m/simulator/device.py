"""A simulated device: the few slots that differ from its neighbours.

Everything shared (object definitions, the Register payload, behaviour) lives in the fleet
and its profile; the object tree is built on demand when a server talks to the device (see
:mod:`.device_model`) and kept only while it holds state of its own (observations, writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NEW, BOOTSTRAPPING, REGISTERING, REGISTERED, RETRYING, STOPPED = range(6)
STATE_NAMES = ("new", "bootstrapping", "registering", "registered", "retrying", "stopped")


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """An LwM2M server several devices share (one object, referenced by each)."""

    uri: str
    address: tuple[Any, ...]
    ssid: int


class SimDevice:
    __slots__ = ("extras", "failures", "firmware_lost", "firmware_version", "index", "lifetime",
                 "location", "next_send", "server", "state", "update_pending", "updated_at",
                 "wake_at")

    def __init__(self, index: int) -> None:
        self.index = index
        self.state = NEW
        self.wake_at = float("inf")
        self.location = ""
        self.server: ServerTarget | None = None
        self.lifetime = 0
        self.updated_at = 0.0
        self.next_send = 0.0
        self.failures = 0
        self.update_pending = False
        self.extras: Any = None
        #: /3/0/3 (None: the profile's firmware version); whether its first firmware
        #: download was lost already (see .firmware).
        self.firmware_version: str | None = None
        self.firmware_lost = False

    def __repr__(self) -> str:
        return f"<SimDevice {self.index} {STATE_NAMES[self.state]}>"

    @property
    def location_path(self) -> tuple[str, ...]:
        return tuple(self.location.split("/"))
