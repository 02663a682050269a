"""Running a campaign: which device's update starts when, within the campaign's limits.

Jobs start in order while fewer than ``concurrency`` run and, with ``per_minute``, fewer
than that many started in the last minute. A job whose device is not reachable now (not
registered, or a queue-mode device asleep) waits aside without holding a place, and goes
back in line when the device registers, updates or wakes; after ``device_wait`` it fails.
A failed attempt waits out its back-off aside too. Pause stops new starts (running ones
finish); the failure rate stops the campaign the same way, with the reason; cancel ends
what has not started and every job not yet past Update (an update the device is installing
is never interrupted). The loop wakes on events and timers only: a campaign over 100,000
devices costs nothing while it waits.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Protocol

from aiolwm2m.background_tasks import BackgroundTasks
from aiolwm2m.server.events import Awake, Event, Registered, Updated

from .records import (
    CANCELLED,
    DOWNLOADED,
    DOWNLOADING,
    FAILED,
    FINAL_CAMPAIGN_STATES,
    FINISHED,
    PAUSED,
    PENDING,
    RETRYING,
    RUNNING,
    STARTING,
    STOPPED,
    SUCCEEDED,
    Campaign,
    UpdateJob,
)
from .update import DeviceUpdate, UpdateServices

log = logging.getLogger(__name__)

#: How often a campaign's counts are announced at most while its jobs move.
ANNOUNCE_EVERY = 0.5


class CampaignServices(UpdateServices, Protocol):
    async def save_campaign(self, campaign: Campaign, run: CampaignRun) -> None: ...

    async def save_jobs(self, jobs: list[UpdateJob]) -> None:
        """Persist and announce jobs the run changed itself (counts already updated)."""

    def announce(self, run: CampaignRun) -> None: ...


class CampaignRun:
    """A campaign and its jobs, and, while it is not final, the loop that runs them."""

    def __init__(self, services: CampaignServices, campaign: Campaign,
                 jobs: list[UpdateJob]) -> None:
        self.s = services
        self.campaign = campaign
        self.jobs: dict[str, UpdateJob] = {j.id: j for j in jobs}
        self.counts: Counter[str] = Counter(j.state for j in jobs)
        self._progress_sum = sum(j.progress for j in jobs)
        self.tasks: dict[str, tuple[asyncio.Task[UpdateJob], DeviceUpdate]] = {}
        self._line: deque[str] = deque()
        self._waiting: dict[str, str] = {}  # endpoint -> job id
        self._wait_deadlines: list[tuple[float, str]] = []
        self._retries: list[tuple[float, str]] = []
        self._starts: deque[float] = deque()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._announce: asyncio.TimerHandle | None = None
        self.on_done: Callable[[CampaignRun], None] | None = None
        # Saves started from task callbacks, which cannot await them.
        self._saves = BackgroundTasks(log, "saving a firmware job")

    # -- state for the API -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.campaign.id

    def progress(self) -> float:
        """Mean progress of the jobs (0..1); kept as a running sum, hence the rounding."""
        if not self.jobs:
            return 1.0
        return round(min(1.0, max(0.0, self._progress_sum / len(self.jobs))), 4)

    def job_changed(self, job: UpdateJob) -> None:
        old = self.jobs.get(job.id)
        if old is not None:
            self.counts[old.state] -= 1
            self._progress_sum -= old.progress
        self.counts[job.state] += 1
        self._progress_sum += job.progress
        self.jobs[job.id] = job
        if old is None or old.state != job.state:
            self.s.announce(self)

    def summary(self) -> dict[str, int]:
        return {state: n for state, n in self.counts.items() if n}

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        for job in self.jobs.values():
            if job.active:
                # Interrupted by a restart: carried on first, whatever the limits say.
                self._launch(job, resume=True)
            elif job.state == RETRYING:
                heapq.heappush(self._retries, (job.next_attempt_at or 0.0, job.id))
            elif job.state == PENDING:
                self._line.append(job.id)
        self._loop = asyncio.create_task(self._run(), name=f"firmware-campaign-{self.id}")

    async def pause(self) -> None:
        if self.campaign.state == RUNNING:
            await self._set_state(PAUSED, "paused by the operator")

    async def resume(self) -> None:
        if self.campaign.state in (PAUSED, STOPPED):
            finished = self.counts[SUCCEEDED] + self.counts[FAILED]
            await self._set_state(RUNNING, "", failure_baseline=(finished, self.counts[FAILED]))

    async def cancel(self, reason: str = "cancelled by the operator") -> None:
        if self.campaign.state in FINAL_CAMPAIGN_STATES:
            return
        await self._set_state(CANCELLED, reason, finished_at=self.s.now())
        now = self.s.now()
        ended = []
        for job in list(self.jobs.values()):
            if job.state in (PENDING, RETRYING) and job.id not in self.tasks:
                done = job.with_step(now, "cancelled", reason, state=CANCELLED, reason=reason,
                                     finished_at=now, next_attempt_at=None)
                self.job_changed(done)
                ended.append(done)
        if ended:
            await self.s.save_jobs(ended)
        for task, update in self.tasks.values():
            if update.job.state in (STARTING, DOWNLOADING, DOWNLOADED):
                update.cancel_reason = reason
                task.cancel()
        self._line.clear()
        self._waiting.clear()
        self._retries.clear()
        self._wake.set()

    async def stop(self) -> None:
        """The service stops: jobs are interrupted where they are, to resume at restart."""
        tasks: list[asyncio.Task[Any]] = [t for t, _ in self.tasks.values()]
        if self._loop is not None:
            tasks.append(self._loop)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:
                pass  # stopped on purpose; its state is saved
        if self._announce is not None:
            self._announce.cancel()

    def device_event(self, endpoint: str, ev: Event) -> None:
        """The device may be reachable now: a waiting job goes back in line."""
        if isinstance(ev, Registered | Updated | Awake):
            job_id = self._waiting.pop(endpoint, None)
            if job_id is not None:
                self._line.appendleft(job_id)
                self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                state = self.campaign.state
                if state in FINAL_CAMPAIGN_STATES:
                    if not self.tasks:
                        return
                    delay = None
                elif state == RUNNING and await self._failure_rate_exceeded():
                    delay = None
                elif state == RUNNING:
                    delay = await self._start_due()
                    if not (self.tasks or self._line or self._waiting or self._retries):
                        await self._set_state(FINISHED, "", finished_at=self.s.now())
                        continue
                else:
                    delay = None
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            if self.on_done is not None:
                self.on_done(self)

    async def _start_due(self) -> float | None:
        """Start what may start now; seconds until something else may (None: on events)."""
        limits = self.campaign.limits
        now = self.s.now()
        while self._retries and self._retries[0][0] <= now:
            _, job_id = heapq.heappop(self._retries)
            self._line.append(job_id)
        await self._expire_waiting(now)
        server = self.s.server
        mono = time.monotonic()
        while self._starts and self._starts[0] <= mono - 60.0:
            self._starts.popleft()
        waited: list[UpdateJob] = []
        while self._line and len(self.tasks) < limits.concurrency:
            if limits.per_minute and len(self._starts) >= limits.per_minute:
                break
            job = self.jobs[self._line.popleft()]
            if job.state not in (PENDING, RETRYING) or job.id in self.tasks:
                continue
            reg = server.registrations.get(job.endpoint)
            if reg is None or not server.queue.is_awake(reg):
                self._waiting[job.endpoint] = job.id
                if job.waiting_since is None:
                    job = job.with_step(now, "waiting", "the device is not registered"
                                        if reg is None else "the device is asleep",
                                        waiting_since=now)
                    self.job_changed(job)
                    waited.append(job)
                heapq.heappush(self._wait_deadlines,
                               ((job.waiting_since or now) + limits.device_wait, job.id))
                continue
            self._launch(job, resume=False)
        if waited:
            await self.s.save_jobs(waited)
        delays = []
        if self._retries:
            delays.append(self._retries[0][0] - now)
        if self._wait_deadlines:
            delays.append(self._wait_deadlines[0][0] - now)
        if self._line and limits.per_minute and len(self._starts) >= limits.per_minute:
            delays.append(self._starts[0] + 60.0 - mono)
        return max(0.01, min(delays)) if delays else None

    async def _expire_waiting(self, now: float) -> None:
        expired = []
        while self._wait_deadlines and self._wait_deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._wait_deadlines)
            job = self.jobs[job_id]
            if self._waiting.get(job.endpoint) != job_id:
                continue  # back in line meanwhile
            del self._waiting[job.endpoint]
            reg = self.s.server.registrations.get(job.endpoint)
            reason = (f"the device was not registered within "
                      f"{self.campaign.limits.device_wait:g} s" if reg is None else
                      f"the device did not wake up within "
                      f"{self.campaign.limits.device_wait:g} s")
            job = job.with_step(now, "failed", reason, state=FAILED, reason=reason,
                                finished_at=now)
            self.job_changed(job)
            expired.append(job)
        if expired:
            await self.s.save_jobs(expired)

    def _launch(self, job: UpdateJob, *, resume: bool) -> None:
        update = DeviceUpdate(self.s, job, self.campaign.limits, resume=resume)
        task = asyncio.create_task(update.run(), name=f"firmware-job-{job.id}")
        self.tasks[job.id] = (task, update)
        self._starts.append(time.monotonic())
        task.add_done_callback(functools.partial(self._finished, job.id))

    def _finished(self, job_id: str, task: asyncio.Task[UpdateJob]) -> None:
        entry = self.tasks.pop(job_id, None)
        self._wake.set()
        if task.cancelled() or entry is None:
            return
        error = task.exception()
        if error is not None:
            # A fault of ours, not the device's: record it rather than leave the job stuck.
            log.error("firmware job %s failed", job_id, exc_info=error)
            job = entry[1].job
            now = self.s.now()
            failed = job.with_step(now, "failed", f"internal error: {error!r}", state=FAILED,
                                   reason=f"internal error: {type(error).__name__}",
                                   finished_at=now)
            self.job_changed(failed)
            self._saves.spawn(self.s.save_jobs([failed]))
            return
        job = task.result()
        if job.state == RETRYING and self.campaign.state not in FINAL_CAMPAIGN_STATES:
            heapq.heappush(self._retries, (job.next_attempt_at or 0.0, job.id))
        elif job.state == RETRYING:
            now = self.s.now()
            ended = job.with_step(now, "cancelled", self.campaign.reason, state=CANCELLED,
                                  reason=self.campaign.reason, finished_at=now,
                                  next_attempt_at=None)
            self.job_changed(ended)
            self._saves.spawn(self.s.save_jobs([ended]))

    async def _failure_rate_exceeded(self) -> bool:
        limits = self.campaign.limits
        base_finished, base_failed = self.campaign.failure_baseline
        finished = self.counts[SUCCEEDED] + self.counts[FAILED] - base_finished
        failed = self.counts[FAILED] - base_failed
        if finished < limits.failure_rate_after or failed / finished <= limits.max_failure_rate:
            return False
        await self._set_state(STOPPED, f"failure rate {failed}/{finished} above "
                              f"{limits.max_failure_rate:g}")
        return True

    async def _set_state(self, state: str, reason: str, **changes: Any) -> None:
        self.campaign = self.campaign.with_changes(state=state, reason=reason,
                                                   updated_at=self.s.now(), **changes)
        log.info("firmware campaign %s (%s): %s%s", self.id, self.campaign.name, state,
                 f" ({reason})" if reason else "")
        await self.s.save_campaign(self.campaign, self)
        self._wake.set()
