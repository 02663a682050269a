"""Events of the firmware service, emitted on the server's event bus (and so in the
server-sent events of the REST API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .records import Campaign, UpdateJob


@dataclass(frozen=True, slots=True)
class FirmwareJobChanged:
    """A device's update moved on: a new state, a step, a failure, progress."""

    name: ClassVar[str] = "firmware-job"
    job: UpdateJob


@dataclass(frozen=True, slots=True)
class FirmwareCampaignChanged:
    """A campaign changed state, or one of its devices finished (``counts`` by job state,
    ``progress`` the mean of its jobs')."""

    name: ClassVar[str] = "firmware-campaign"
    campaign: Campaign
    counts: dict[str, int] = field(default_factory=dict)
    progress: float = 0.0
