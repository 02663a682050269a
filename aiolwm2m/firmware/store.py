"""Where campaigns and update jobs persist, so a restarted server resumes them.

Two implementations pass tests/firmware/test_store_contract.py: :class:`MemoryFirmwareStore`
(nothing survives the process) and :class:`~.store_sqlite.SQLiteFirmwareStore`. The service
holds every record in memory and writes each change through; the store is read once, at
start. Writes return once durable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from .records import Campaign, UpdateJob


class FirmwareStore(Protocol):
    async def load(self) -> tuple[list[Campaign], list[UpdateJob]]:
        """Every campaign (oldest first) and every job (in the order first stored)."""

    def put_campaign(self, campaign: Campaign) -> Awaitable[None]:
        """Store a campaign, replacing the one with its id."""

    def put_jobs(self, jobs: Sequence[UpdateJob]) -> Awaitable[None]:
        """Store jobs, replacing those with their ids."""

    async def remove_campaign(self, campaign_id: str) -> None:
        """Forget a campaign and its jobs."""

    async def close(self) -> None: ...


class MemoryFirmwareStore:
    def __init__(self) -> None:
        self._campaigns: dict[str, Campaign] = {}
        self._jobs: dict[str, UpdateJob] = {}

    async def load(self) -> tuple[list[Campaign], list[UpdateJob]]:
        return list(self._campaigns.values()), list(self._jobs.values())

    async def put_campaign(self, campaign: Campaign) -> None:
        self._campaigns[campaign.id] = campaign

    async def put_jobs(self, jobs: Sequence[UpdateJob]) -> None:
        for job in jobs:
            self._jobs[job.id] = job

    async def remove_campaign(self, campaign_id: str) -> None:
        self._campaigns.pop(campaign_id, None)
        for job_id in [j.id for j in self._jobs.values() if j.campaign_id == campaign_id]:
            del self._jobs[job_id]

    async def close(self) -> None:
        pass
