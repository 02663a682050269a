"""Events of end devices behind gateways, emitted on the server's event bus (and so in the
server-sent events of the REST API). ``registration`` is the end device's registration
view: its ``endpoint`` is an :class:`~aiolwm2m.gateway.names.EndDeviceName`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m.store.records import Registration

__all__ = ["EndDeviceAdded", "EndDeviceChanged", "EndDeviceRemoved"]


@dataclass(frozen=True, slots=True)
class EndDeviceAdded:
    """A gateway announced a new end device (a new ``/25`` instance)."""

    name: ClassVar[str] = "end-device-added"
    registration: Registration


@dataclass(frozen=True, slots=True)
class EndDeviceChanged:
    """An end device's objects (``/25/x/3``) or device id changed."""

    name: ClassVar[str] = "end-device-changed"
    registration: Registration


@dataclass(frozen=True, slots=True)
class EndDeviceRemoved:
    """An end device went away: its gateway dropped it from ``/25`` ("removed"), or the
    gateway's registration ended ("deregistered", "expired", "replaced...")."""

    name: ClassVar[str] = "end-device-removed"
    registration: Registration
    reason: str
