"""What the client reports about itself: bootstrap, registration, queue mode, reporting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m.event_bus import EventBus, EventStream


@dataclass(frozen=True, slots=True)
class BootstrapStarted:
    name: ClassVar[str] = "bootstrap-started"
    server_initiated: bool = False


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    name: ClassVar[str] = "bootstrapped"


@dataclass(frozen=True, slots=True)
class BootstrapFailed:
    name: ClassVar[str] = "bootstrap-failed"
    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True)
class Registered:
    name: ClassVar[str] = "registered"
    ssid: int
    location: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    name: ClassVar[str] = "registration-failed"
    ssid: int
    reason: str
    retry_in: float
    failures: int


@dataclass(frozen=True, slots=True)
class Updated:
    name: ClassVar[str] = "updated"
    ssid: int


@dataclass(frozen=True, slots=True)
class Deregistered:
    name: ClassVar[str] = "deregistered"
    ssid: int


@dataclass(frozen=True, slots=True)
class Disabled:
    name: ClassVar[str] = "disabled"
    ssid: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Sleeping:
    name: ClassVar[str] = "sleeping"


@dataclass(frozen=True, slots=True)
class Awake:
    name: ClassVar[str] = "awake"


@dataclass(frozen=True, slots=True)
class NotificationSent:
    name: ClassVar[str] = "notification-sent"
    ssid: int
    paths: tuple[str, ...]


ClientEvent = (BootstrapStarted | Bootstrapped | BootstrapFailed | Registered
               | RegistrationFailed | Updated | Deregistered | Disabled | Sleeping | Awake
               | NotificationSent)


ClientEventStream = EventStream


class ClientEvents(EventBus[ClientEvent]):
    def __init__(self) -> None:
        super().__init__(stream_size=1000)
