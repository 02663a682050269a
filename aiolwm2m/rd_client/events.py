"""What an RD registerer reports as its registration changes state.

Listen with ``registerer.events.subscribe(callback)`` (called synchronously, in order) or
iterate ``registerer.events.stream()``. ``location`` is the registration resource on the
RD, e.g. ``/rd/4``; a simple registration, which the RD answers without one, has ``""``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m.event_bus import EventBus


@dataclass(frozen=True, slots=True)
class RdRegistered:
    """A registration (or re-registration) succeeded."""

    name: ClassVar[str] = "rd-registered"
    location: str
    lifetime: int
    simple: bool = False


@dataclass(frozen=True, slots=True)
class RdUpdated:
    """A refresh (Update, or repeated simple registration) succeeded."""

    name: ClassVar[str] = "rd-updated"
    location: str
    lifetime: int


@dataclass(frozen=True, slots=True)
class RdRegistrationFailed:
    """Registering (or refreshing) failed: another attempt follows in ``retry_in``
    seconds; ``failures`` counts the failures in a row."""

    name: ClassVar[str] = "rd-registration-failed"
    reason: str
    retry_in: float
    failures: int


@dataclass(frozen=True, slots=True)
class RdRegistrationLost:
    """The RD no longer knows the registration (4.04 to an Update) or its refresh failed:
    the registerer registers again at once."""

    name: ClassVar[str] = "rd-registration-lost"
    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class RdUnregistered:
    """The registration was removed on close (``confirmed``: the RD answered 2.02)."""

    name: ClassVar[str] = "rd-unregistered"
    location: str
    confirmed: bool


RdEvent = RdRegistered | RdUpdated | RdRegistrationFailed | RdRegistrationLost | RdUnregistered


class RdEvents(EventBus[RdEvent]):
    def __init__(self) -> None:
        super().__init__(stream_size=1000)
