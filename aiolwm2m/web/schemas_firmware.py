"""Request and response bodies of ``/api/firmware`` (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from aiolwm2m.firmware.records import Campaign, CampaignLimits, FirmwareImage, UpdateJob

_DEFAULTS = CampaignLimits()
Method = Literal["auto", "coap", "coaps", "coap+tcp", "coaps+tcp", "http", "https", "push"]


class ImageOut(BaseModel):
    sha256: str
    name: str
    version: str
    size: int
    device_types: list[str]
    uploaded_at: float

    @classmethod
    def of(cls, image: FirmwareImage) -> ImageOut:
        return cls(**image.to_dict())


class LimitsIn(BaseModel):
    """How a campaign runs; every field has a default."""

    concurrency: int = Field(default=_DEFAULTS.concurrency, ge=1, le=100_000,
                             description="devices updated at the same time")
    per_minute: float = Field(default=_DEFAULTS.per_minute, ge=0, le=1_000_000,
                              description="updates started per minute (0: no limit)")
    max_failure_rate: float = Field(default=_DEFAULTS.max_failure_rate, ge=0, le=1,
        description="stop the campaign when failed/finished exceeds this (1: never)")
    failure_rate_after: int = Field(default=_DEFAULTS.failure_rate_after, ge=1,
                                    description="devices finished before the rate counts")
    max_attempts: int = Field(default=_DEFAULTS.max_attempts, ge=1, le=100)
    retry_delay: float = Field(default=_DEFAULTS.retry_delay, ge=0, le=86400,
                               description="back-off after the first failed attempt, s "
                               "(doubling)")
    retry_delay_max: float = Field(default=_DEFAULTS.retry_delay_max, ge=0, le=7 * 86400)
    download_timeout: float = Field(default=_DEFAULTS.download_timeout, gt=0, le=7 * 86400)
    update_timeout: float = Field(default=_DEFAULTS.update_timeout, gt=0, le=7 * 86400,
                                  description="from Execute Update to the device back with "
                                  "the new version, s")
    device_wait: float = Field(default=_DEFAULTS.device_wait, ge=0, le=365 * 86400,
                               description="how long a device that is not registered (or "
                               "asleep) is waited for, s")
    request_timeout: float = Field(default=_DEFAULTS.request_timeout, gt=0, le=3600)
    method: Method = Field(default="auto", description="auto: chosen from /5/0/8 and /5/0/9")

    def limits(self) -> CampaignLimits:
        return CampaignLimits(**self.model_dump())


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    image: str = Field(description="sha256 of an uploaded image", min_length=64,
                       max_length=64)
    targets: dict[str, Any] = Field(
        description='{"endpoints": [...]}, {"group": "name"} (a device group\'s members now) '
        'or {"filter": {"endpoint": "sim-*", "object": 5, "object_version": "1.1", '
        '"attributes": {"binding": "U"}}}',
        examples=[{"endpoints": ["dev-1"]}, {"group": "line-2"},
                  {"filter": {"endpoint": "sim-*"}}])
    limits: LimitsIn = LimitsIn()


class UpdateIn(BaseModel):
    endpoint: str = Field(min_length=1)
    image: str = Field(min_length=64, max_length=64)
    limits: LimitsIn = LimitsIn()


class CampaignOut(BaseModel):
    id: str
    name: str
    image: str
    targets: dict[str, Any]
    limits: dict[str, Any]
    state: Literal["running", "paused", "stopped", "cancelled", "finished"]
    reason: str
    created_at: float
    updated_at: float
    finished_at: float | None
    devices: int
    counts: dict[str, int] = Field(description="jobs by state")
    progress: float = Field(description="mean progress of its devices, 0..1")

    @classmethod
    def of(cls, campaign: Campaign, devices: int, counts: dict[str, int], progress: float
           ) -> CampaignOut:
        d = campaign.to_dict()
        d.pop("failure_baseline", None)
        return cls(**d, devices=devices, counts=counts, progress=progress)


class StepOut(BaseModel):
    at: float
    step: str
    detail: str


class JobOut(BaseModel):
    id: str
    campaign_id: str
    endpoint: str
    image: str
    state: str
    attempt: int
    method: str | None
    progress: float
    from_version: str | None
    reason: str
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    next_attempt_at: float | None
    waiting_since: float | None
    steps: list[StepOut] | None = None

    @classmethod
    def of(cls, job: UpdateJob, *, steps: bool) -> JobOut:
        d = job.to_dict(steps=steps)
        d.pop("token", None)
        return cls(**d)


class JobPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[JobOut]
