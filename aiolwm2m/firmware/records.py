"""What the firmware service keeps: images, campaigns and per-device update jobs.

Plain immutable records that convert to and from JSON-ready dicts (the SQLite store keeps
them as JSON, the REST API and the event stream show the same dicts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Job states. ``pending``: waiting for its turn or for its device; ``retrying``: an attempt
#: failed and the next one waits for its back-off. The active ones follow the device through
#: Object 5: ``starting`` (reading its state), ``downloading``, ``downloaded``, ``updating``
#: (Update executed, waiting for the re-registration) and ``verifying``.
PENDING, RETRYING = "pending", "retrying"
STARTING, DOWNLOADING, DOWNLOADED, UPDATING, VERIFYING = (
    "starting", "downloading", "downloaded", "updating", "verifying")
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
ACTIVE_JOB_STATES = frozenset({STARTING, DOWNLOADING, DOWNLOADED, UPDATING, VERIFYING})
FINAL_JOB_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
JOB_STATES = (PENDING, RETRYING, STARTING, DOWNLOADING, DOWNLOADED, UPDATING, VERIFYING,
              SUCCEEDED, FAILED, CANCELLED)

#: Campaign states: ``stopped`` is a pause the failure rate imposed (``reason`` says so).
RUNNING, PAUSED, STOPPED, FINISHED = "running", "paused", "stopped", "finished"
CAMPAIGN_STATES = (RUNNING, PAUSED, STOPPED, CANCELLED, FINISHED)
FINAL_CAMPAIGN_STATES = frozenset({CANCELLED, FINISHED})

#: Delivery methods: pull over one of the CoAP schemes or HTTP from this server, or push.
METHODS = ("coap", "coaps", "coap+tcp", "coaps+tcp", "http", "https", "push")
AUTO = "auto"

#: Steps kept per job (the oldest go first): a device that fails and retries all day must
#: not grow its record without bound.
MAX_STEPS = 64


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    sha256: str
    name: str
    version: str
    size: int
    device_types: tuple[str, ...] = ()
    uploaded_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "version": self.version,
                "size": self.size, "device_types": list(self.device_types),
                "uploaded_at": self.uploaded_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FirmwareImage:
        return cls(str(d["sha256"]), str(d["name"]), str(d["version"]), int(d["size"]),
                   tuple(str(t) for t in d.get("device_types", ())),
                   float(d.get("uploaded_at", 0.0)))


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened to a job, for the operator: when, what, details."""

    at: float
    step: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "step": self.step, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(float(d["at"]), str(d["step"]), str(d.get("detail", "")))


@dataclass(frozen=True, slots=True)
class CampaignLimits:
    #: Devices being updated at the same time.
    concurrency: int = 10
    #: Device updates started per minute (0: no limit).
    per_minute: float = 0.0
    #: Stop (a pause with a reason) when failed / finished exceeds this, once at least
    #: ``failure_rate_after`` devices finished; 1.0 never stops.
    max_failure_rate: float = 1.0
    failure_rate_after: int = 10
    #: Attempts per device, and the back-off between them (doubling up to the maximum).
    max_attempts: int = 3
    retry_delay: float = 30.0
    retry_delay_max: float = 600.0
    #: Seconds a download (pull) or push may take.
    download_timeout: float = 1800.0
    #: Seconds from Execute Update to the re-registration with the new version.
    update_timeout: float = 600.0
    #: How long a device that is not registered (or asleep, in queue mode) is waited for
    #: before its job fails; queue-mode devices are updated when they wake within it.
    device_wait: float = 86400.0
    #: Single device requests (reads, writes, executes).
    request_timeout: float = 60.0
    #: ``auto`` (chosen from /5/0/8 and /5/0/9) or one of :data:`METHODS`.
    method: str = AUTO

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.per_minute < 0:
            raise ValueError("per_minute must not be negative (0: no limit)")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError("max_failure_rate is a fraction between 0 and 1")
        if self.failure_rate_after < 1:
            raise ValueError("failure_rate_after must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("retry_delay", "retry_delay_max", "download_timeout", "update_timeout",
                     "device_wait", "request_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("download_timeout", "update_timeout", "request_timeout"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be positive")
        if self.method != AUTO and self.method not in METHODS:
            raise ValueError(f"method is auto or one of {', '.join(METHODS)}, "
                             f"not {self.method!r}")

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failed attempt (1, 2, ...)."""
        return float(min(self.retry_delay_max,
                         self.retry_delay * (2 ** max(0, failed_attempts - 1))))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CampaignLimits:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    image: str  # sha256
    #: What the campaign was created for (``{"endpoints": [...]}`` or ``{"filter": ...}``),
    #: kept as given; the devices themselves are its jobs, resolved at creation.
    targets: dict[str, Any]
    limits: CampaignLimits = field(default_factory=CampaignLimits)
    state: str = RUNNING
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    #: (finished, failed) when the campaign was last resumed: the failure rate that stops it
    #: counts only what came after, or a resumed campaign would stop again at once.
    failure_baseline: tuple[int, int] = (0, 0)

    def with_changes(self, **changes: Any) -> Campaign:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "image": self.image,
                "targets": self.targets, "limits": self.limits.to_dict(),
                "state": self.state, "reason": self.reason, "created_at": self.created_at,
                "updated_at": self.updated_at, "finished_at": self.finished_at,
                "failure_baseline": list(self.failure_baseline)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Campaign:
        baseline = d.get("failure_baseline") or (0, 0)
        return cls(str(d["id"]), str(d["name"]), str(d["image"]), dict(d.get("targets", {})),
                   CampaignLimits.from_dict(dict(d.get("limits", {}))), str(d["state"]),
                   str(d.get("reason", "")), float(d.get("created_at", 0.0)),
                   float(d.get("updated_at", 0.0)),
                   None if d.get("finished_at") is None else float(d["finished_at"]),
                   (int(baseline[0]), int(baseline[1])))


@dataclass(frozen=True, slots=True)
class UpdateJob:
    """One device's update within a campaign."""

    id: str
    campaign_id: str
    endpoint: str
    image: str  # sha256
    state: str = PENDING
    attempt: int = 0
    method: str | None = None
    #: Fraction of the image delivered (0..1) in the current attempt.
    progress: float = 0.0
    from_version: str | None = None
    #: Why the job failed (or the last attempt did, while retrying).
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    #: When a retrying job's next attempt may start.
    next_attempt_at: float | None = None
    #: Since when the job has been waiting for its device (queue mode, not registered).
    waiting_since: float | None = None
    #: The download token of the current pull (see :mod:`.delivery`): kept, so a device
    #: that is downloading when the server restarts carries on with the same URI.
    token: str = ""
    steps: tuple[Step, ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @property
    def final(self) -> bool:
        return self.state in FINAL_JOB_STATES

    def with_changes(self, **changes: Any) -> UpdateJob:
        return dataclasses.replace(self, **changes)

    def with_step(self, at: float, step: str, detail: str = "", **changes: Any) -> UpdateJob:
        steps = (*self.steps, Step(at, step, detail))[-MAX_STEPS:]
        return dataclasses.replace(self, steps=steps, updated_at=at, **changes)

    def to_dict(self, *, steps: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "campaign_id": self.campaign_id, "endpoint": self.endpoint,
            "image": self.image, "state": self.state, "attempt": self.attempt,
            "method": self.method, "progress": self.progress,
            "from_version": self.from_version, "reason": self.reason,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "started_at": self.started_at, "finished_at": self.finished_at,
            "next_attempt_at": self.next_attempt_at, "waiting_since": self.waiting_since,
            "token": self.token}
        if steps:
            out["steps"] = [s.to_dict() for s in self.steps]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpdateJob:
        def opt(name: str) -> float | None:
            value = d.get(name)
            return None if value is None else float(value)

        return cls(str(d["id"]), str(d["campaign_id"]), str(d["endpoint"]), str(d["image"]),
                   str(d.get("state", PENDING)), int(d.get("attempt", 0)),
                   None if d.get("method") is None else str(d["method"]),
                   float(d.get("progress", 0.0)),
                   None if d.get("from_version") is None else str(d["from_version"]),
                   str(d.get("reason", "")), float(d.get("created_at", 0.0)),
                   float(d.get("updated_at", 0.0)), opt("started_at"), opt("finished_at"),
                   opt("next_attempt_at"), opt("waiting_since"), str(d.get("token", "")),
                   tuple(Step.from_dict(s) for s in d.get("steps", ())))
