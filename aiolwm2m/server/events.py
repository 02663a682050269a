"""Events the server emits, and the bus that delivers them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m import event_bus as _bus
from aiolwm2m.firmware.events import FirmwareCampaignChanged, FirmwareJobChanged
from aiolwm2m.gateway.events import EndDeviceAdded, EndDeviceChanged, EndDeviceRemoved
from aiolwm2m.lwm2m.nodes import TimestampedNodes
from aiolwm2m.lwm2m.operations import ObserveResponse
from aiolwm2m.store.records import Observation, QueuedRequest, Registration


@dataclass(frozen=True, slots=True)
class Registered:
    name: ClassVar[str] = "registered"
    registration: Registration
    replaced: Registration | None = None


@dataclass(frozen=True, slots=True)
class Updated:
    name: ClassVar[str] = "updated"
    registration: Registration
    previous: Registration


@dataclass(frozen=True, slots=True)
class Deregistered:
    name: ClassVar[str] = "deregistered"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Expired:
    name: ClassVar[str] = "expired"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Awake:
    name: ClassVar[str] = "awake"
    registration: Registration


@dataclass(frozen=True, slots=True)
class Sleeping:
    name: ClassVar[str] = "sleeping"
    registration: Registration


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    name: ClassVar[str] = "notification"
    registration: Registration
    observation: Observation
    response: ObserveResponse


@dataclass(frozen=True, slots=True)
class ObservationEnded:
    name: ClassVar[str] = "observation-ended"
    registration: Registration | None
    observation: Observation
    reason: str


@dataclass(frozen=True, slots=True)
class SendReceived:
    name: ClassVar[str] = "send"
    registration: Registration
    values: tuple[TimestampedNodes, ...]


@dataclass(frozen=True, slots=True)
class QueuedRequestFinished:
    name: ClassVar[str] = "queued-request"
    request: QueuedRequest


@dataclass(frozen=True, slots=True)
class Refused:
    """A request the server refused (see ``aiolwm2m.server.refusals``)."""

    name: ClassVar[str] = "refused"
    transport: str
    reason: str
    endpoint: str | None = None
    detail: str = ""
    peer: str | None = None


Event = (Registered | Updated | Deregistered | Expired | Awake | Sleeping
         | NotificationReceived | ObservationEnded | SendReceived | QueuedRequestFinished
         | Refused | FirmwareJobChanged | FirmwareCampaignChanged
         | EndDeviceAdded | EndDeviceChanged | EndDeviceRemoved)


EventStream = _bus.EventStream


class EventBus(_bus.EventBus[Event]):
    pass
