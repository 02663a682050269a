"""The firmware service: images, campaigns and their jobs, on top of an LwM2M server.

::

    server = LwM2MServer(ServerConfig(...))
    await server.start()
    firmware = FirmwareService(server)
    await firmware.start()          # images in data_dir/firmware, jobs in firmware.sqlite3
    image, _ = await firmware.upload(chunks, name="app", version="1.2.0")
    run = await firmware.create_campaign("fleet 1.2.0", image.sha256,
                                         {"filter": {"endpoint": "sim-*"}},
                                         CampaignLimits(concurrency=50, per_minute=600))

Start it after the server (it serves ``/fw`` on the server's listeners) and stop it before;
a campaign that was running when the service stopped carries on at the next start.
A single device's update is a campaign of one (:meth:`update_device`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from typing import Any

from aiolwm2m.server import LwM2MServer, NotRegistered
from aiolwm2m.server.events import Event
from aiolwm2m.store.redis_records import redis_stores_of
from aiolwm2m.transport.site import Resource
from aiolwm2m.transport.tcp import TcpEndpoint

from . import targets
from .campaigns import ANNOUNCE_EVERY, CampaignRun
from .delivery import Deliveries, FirmwareResource
from .errors import BadRequest, Conflict, NotFound
from .events import FirmwareCampaignChanged, FirmwareJobChanged
from .images import DirectoryImageStore, ImageStore, MemoryImageStore
from .methods import PUSH, check_requested
from .records import (
    DOWNLOADING,
    FINAL_CAMPAIGN_STATES,
    Campaign,
    CampaignLimits,
    FirmwareImage,
    UpdateJob,
)
from .store import FirmwareStore, MemoryFirmwareStore
from .store_sqlite import SQLiteFirmwareStore
from .watch import DeviceEvents

log = logging.getLogger(__name__)

#: Where the listeners serve images (``/fw/{token}``).
PATH = "fw"


class FirmwareService:
    def __init__(self, server: LwM2MServer, *, images: ImageStore | None = None,
                 store: FirmwareStore | None = None) -> None:
        self.server = server
        self._images = images
        self._store = store
        # Made by start() (from the server's configuration), so dropped by stop().
        self._own_images = images is None
        self._own_store = store is None
        self.device_events = DeviceEvents()
        self.device_events.on_device = self._device_event
        self.runs: dict[str, CampaignRun] = {}
        # The runs whose loop is on: only they hear about devices (every Register and
        # Update of the server passes through _device_event).
        self._running: dict[str, CampaignRun] = {}
        # Served from now on (5.03 until start): a service made before the server starts
        # leaves no moment where a listener answers a download with 4.04.
        self.deliveries = Deliveries(server, images)
        self.deliveries.stopped = True
        server.add_listener_resource(PATH, self._resource_for)
        self._unsubscribe: Callable[[], None] | None = None
        self._pending_announce: dict[str, asyncio.TimerHandle] = {}
        #: Finished device updates since start, by outcome (for the metrics).
        self.finished: dict[str, int] = {}
        self.started = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.server.config
        # Images live in the data directory unless nothing is to be kept (with a Redis
        # store too: they are this server's); jobs live with the server's stores.
        keep = cfg.store != "memory"
        if self._images is None:
            self._images = (DirectoryImageStore.open(cfg.data_dir / "firmware") if keep
                            else MemoryImageStore())
        if self._store is None and redis_stores_of(self.server.stores) is not None:
            # Campaigns and jobs in the server's Redis, through its writer (images stay
            # in the data directory).
            from .store_redis import RedisFirmwareStore

            self._store = RedisFirmwareStore.beside(self.server.stores)
        if self._store is None:
            self._store = (await SQLiteFirmwareStore.open(cfg.data_dir / "firmware.sqlite3",
                                                          synchronous=cfg.sqlite_synchronous)
                           if keep else MemoryFirmwareStore())
        deliveries = self.deliveries
        deliveries.images = self._images
        deliveries.public_host = cfg.firmware_public_host
        campaigns, jobs = await self._store.load()
        by_campaign: dict[str, list[UpdateJob]] = {}
        for job in jobs:
            by_campaign.setdefault(job.campaign_id, []).append(job)
            image = self._images.get(job.image)
            if job.state == DOWNLOADING and job.token and job.method != PUSH and image:
                # Devices that were downloading carry on with their URI at once, before
                # their job has looked at them again.
                await deliveries.open(job.token, job.id, job.endpoint, image)
        # (Again: a server restarted under this service has new listeners.)
        self.server.add_listener_resource(PATH, self._resource_for)
        deliveries.stopped = False
        self._unsubscribe = self.server.events.subscribe(self.device_events)
        resumed = 0
        for campaign in campaigns:
            run = self._add_run(campaign, by_campaign.get(campaign.id, []))
            if campaign.state not in FINAL_CAMPAIGN_STATES:
                self._start_run(run)
                resumed += 1
        self.started = True
        if resumed:
            log.info("resumed %d firmware campaigns", resumed)

    async def stop(self) -> None:
        """Stop; ``/fw`` then answers 5.03 (a device downloading keeps what it has and
        carries on when a service starts again) until the next start replaces it."""
        if not self.started:
            return
        self.started = False
        self.deliveries.stopped = True
        for run in list(self.runs.values()):
            await run.stop()
        for handle in self._pending_announce.values():
            handle.cancel()
        self._pending_announce.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._store is not None:
            await self._store.close()
        if self._own_store:
            self._store = None
        if self._own_images:
            self._images = None
        self.runs.clear()
        self._running.clear()

    def _resource_for(self, transport: str, endpoint: Any) -> Resource:
        return FirmwareResource(self.deliveries, transport, endpoint,
                                reliable=isinstance(endpoint, TcpEndpoint))

    @property
    def images(self) -> ImageStore:
        assert self._images is not None, "start() the firmware service first"
        return self._images

    @property
    def store(self) -> FirmwareStore:
        assert self._store is not None, "start() the firmware service first"
        return self._store

    def now(self) -> float:
        return self.server.config.clock()

    # -- images ----------------------------------------------------------------------------

    def image(self, sha256: str) -> FirmwareImage | None:
        return self.images.get(sha256)

    async def image_content(self, sha256: str) -> bytes:
        return await self.images.content(sha256)

    async def upload(self, chunks: AsyncIterable[bytes], *, name: str, version: str,
                     device_types: Sequence[str] = (), size: int | None = None,
                     sha256: str | None = None) -> tuple[FirmwareImage, bool]:
        image, created = await self.images.add(
            chunks, name=name, version=version, device_types=device_types, size=size,
            sha256=sha256, max_size=self.server.config.firmware_max_image, now=self.now())
        if created:
            log.info("firmware image %s %s stored (%d bytes, sha256 %s)", image.name,
                     image.version, image.size, image.sha256)
        return image, created

    async def delete_image(self, sha256: str) -> FirmwareImage:
        users = [r.campaign.name for r in self.runs.values() if r.campaign.image == sha256
                 and r.campaign.state not in FINAL_CAMPAIGN_STATES]
        if users:
            raise Conflict(f"the image is used by unfinished campaigns: {', '.join(users)}")
        image = await self.images.remove(sha256)
        if image is None:
            raise NotFound(f"no firmware image {sha256[:64]}")
        return image

    # -- campaigns -------------------------------------------------------------------------

    async def create_campaign(self, name: str, image: str, target_spec: Mapping[str, Any],
                              limits: CampaignLimits | None = None) -> CampaignRun:
        limits = limits or CampaignLimits()
        check_requested(limits.method)
        name = name.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise BadRequest("name must be 1 to 200 printable characters")
        if self.images.get(image) is None:
            raise NotFound(f"no firmware image {image[:64]}")
        endpoints = targets.resolve(target_spec, self.server.registrations,
                                    self._group_members)
        now = self.now()
        campaign_id = secrets.token_hex(6)
        campaign = Campaign(campaign_id, name, image, dict(target_spec), limits, created_at=now,
                            updated_at=now)
        jobs = [UpdateJob(f"{campaign_id}-{i}", campaign_id, endpoint, image, created_at=now,
                          updated_at=now) for i, endpoint in enumerate(endpoints)]
        await self.store.put_campaign(campaign)
        for i in range(0, len(jobs), 1000):
            await self.store.put_jobs(jobs[i:i + 1000])
        run = self._add_run(campaign, jobs)
        log.info("firmware campaign %s (%s): image %s to %d devices", campaign_id, name,
                 image[:12], len(jobs))
        self.server.emit(FirmwareCampaignChanged(campaign, run.summary(), run.progress()))
        self._start_run(run)
        return run

    def _group_members(self, name: str) -> list[str]:
        """The seam to device groups: a campaign over ``{"group": name}`` updates who is
        in the group when it is created (later members are not added)."""
        try:
            found = self.server.groups.resolve(name)
        except LookupError:
            raise NotFound(f"no device group {name[:64]!r}") from None
        if found.truncated:
            raise BadRequest(f"the group {name[:64]!r} has more members than a group may "
                             "have; narrow it first")
        return found.endpoints

    async def update_device(self, endpoint: str, image: str,
                            limits: CampaignLimits | None = None) -> CampaignRun:
        """A campaign of one: update ``endpoint`` (registered now) to ``image``."""
        if endpoint not in self.server.registrations:
            raise NotRegistered(endpoint)
        found = self.images.get(image)
        if found is None:
            raise NotFound(f"no firmware image {image[:64]}")
        return await self.create_campaign(f"{found.name} {found.version} to {endpoint}",
                                          image, {"endpoints": [endpoint]}, limits)

    def _start_run(self, run: CampaignRun) -> None:
        self._running[run.id] = run
        run.on_done = self._run_ended
        run.start()

    def _run_ended(self, run: CampaignRun) -> None:
        self._running.pop(run.id, None)

    def _add_run(self, campaign: Campaign, jobs: list[UpdateJob]) -> CampaignRun:
        run = CampaignRun(self, campaign, jobs)
        self.runs[campaign.id] = run
        return run

    def run(self, campaign_id: str) -> CampaignRun:
        run = self.runs.get(campaign_id)
        if run is None:
            raise NotFound(f"no firmware campaign {campaign_id[:64]!r}")
        return run

    async def pause(self, campaign_id: str) -> CampaignRun:
        run = self._unfinished(campaign_id, "pause")
        await run.pause()
        return run

    async def resume(self, campaign_id: str) -> CampaignRun:
        run = self._unfinished(campaign_id, "resume")
        await run.resume()
        return run

    async def cancel(self, campaign_id: str) -> CampaignRun:
        run = self._unfinished(campaign_id, "cancel")
        await run.cancel()
        return run

    async def remove(self, campaign_id: str) -> None:
        run = self.run(campaign_id)
        if run.campaign.state not in FINAL_CAMPAIGN_STATES or run.tasks:
            raise Conflict("only a finished or cancelled campaign (with no update still "
                           "running) can be removed")
        await self.store.remove_campaign(campaign_id)
        del self.runs[campaign_id]

    def _unfinished(self, campaign_id: str, what: str) -> CampaignRun:
        run = self.run(campaign_id)
        if run.campaign.state in FINAL_CAMPAIGN_STATES:
            raise Conflict(f"cannot {what} a campaign that is {run.campaign.state}")
        return run

    def job(self, job_id: str) -> UpdateJob:
        run = self.runs.get(job_id.rsplit("-", 1)[0])
        job = run.jobs.get(job_id) if run is not None else None
        if job is None:
            raise NotFound(f"no firmware update job {job_id[:64]!r}")
        return job

    def jobs_of(self, endpoint: str) -> list[UpdateJob]:
        """Every update of ``endpoint``, oldest first."""
        out = [j for run in self.runs.values() for j in run.jobs.values()
               if j.endpoint == endpoint]
        return sorted(out, key=lambda j: j.created_at)

    # -- what runs and jobs call back ------------------------------------------------------

    async def save_job(self, job: UpdateJob) -> None:
        run = self.runs.get(job.campaign_id)
        if run is not None:
            run.job_changed(job)
        if job.final:
            self.finished[job.state] = self.finished.get(job.state, 0) + 1
        await self.store.put_jobs([job])
        self.server.emit(FirmwareJobChanged(job))

    async def save_jobs(self, jobs: list[UpdateJob]) -> None:
        for job in jobs:
            if job.final:
                self.finished[job.state] = self.finished.get(job.state, 0) + 1
        await self.store.put_jobs(jobs)
        for job in jobs:
            self.server.emit(FirmwareJobChanged(job))

    def job_progressed(self, job: UpdateJob) -> None:
        run = self.runs.get(job.campaign_id)
        if run is not None:
            run.job_changed(job)
        self.server.emit(FirmwareJobChanged(job))

    async def save_campaign(self, campaign: Campaign, run: CampaignRun) -> None:
        await self.store.put_campaign(campaign)
        self._announce_now(run)

    def announce(self, run: CampaignRun) -> None:
        """The run's counts changed: say so, at most every ANNOUNCE_EVERY seconds."""
        if run.id in self._pending_announce:
            return
        loop = asyncio.get_running_loop()
        self._pending_announce[run.id] = loop.call_later(ANNOUNCE_EVERY, self._announce_now,
                                                         run)

    def _announce_now(self, run: CampaignRun) -> None:
        handle = self._pending_announce.pop(run.id, None)
        if handle is not None:
            handle.cancel()
        self.server.emit(FirmwareCampaignChanged(run.campaign, run.summary(), run.progress()))

    def _device_event(self, endpoint: str, ev: Event) -> None:
        for run in self._running.values():
            run.device_event(endpoint, ev)
