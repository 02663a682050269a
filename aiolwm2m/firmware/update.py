"""One device's firmware update: the server walks it through Object 5.

An attempt reads the device's firmware version (/3/0/3: already there is success) and its
Object 5 state, observes State (/5/0/3) and Update Result (/5/0/5), resets a state left by
an earlier try, delivers the image (a Package URI to pull from this server, or a Block1
Write of the Package for push; see :mod:`.methods`), executes Update (/5/0/2) and waits for
the device to come back: a re-registration, or Update Result 1, after which /3/0/3 must
name the image's version. Each step is recorded in the job and saved before the next one.

A failed attempt is retried after a back-off (``CampaignLimits``) unless the failure is
permanent (the device cannot take this image or method); a job resumed after a server
restart looks at the device's state first and carries on from there (a download still
running keeps its URI: the token is part of the job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from aiolwm2m.lwm2m.nodes import MultipleResource, ObjectInstance, SingleResource
from aiolwm2m.lwm2m.operations import (
    ExecuteRequest,
    ObserveRequest,
    Operation,
    ReadRequest,
    ReadResponse,
    Response,
    WriteRequest,
)
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.server.errors import NotRegistered, RequestFailed
from aiolwm2m.server.events import Deregistered, Expired, NotificationReceived, Registered
from aiolwm2m.server.queue_mode import QueueExpired
from aiolwm2m.store.records import Registration

from .delivery import Deliveries, Delivery, new_token
from .methods import PUSH, NoMethod, choose
from .records import (
    CANCELLED,
    DOWNLOADED,
    DOWNLOADING,
    FAILED,
    RETRYING,
    STARTING,
    SUCCEEDED,
    UPDATING,
    VERIFYING,
    CampaignLimits,
    FirmwareImage,
    UpdateJob,
)
from .watch import DeviceEvents, Watcher

log = logging.getLogger(__name__)

# Object 5 State (/5/0/3) and Update Result (/5/0/5) values.
IDLE, DOWNLOADING_STATE, DOWNLOADED_STATE, UPDATING_STATE = 0, 1, 2, 3
INITIAL, SUCCESS, UPDATE_FAILED = 0, 1, 8
RESULTS = {0: "initial", 1: "success", 2: "not enough flash memory",
           3: "out of RAM during download", 4: "connection lost during download",
           5: "integrity check failure", 6: "unsupported package type", 7: "invalid URI",
           8: "firmware update failed", 9: "unsupported protocol",
           10: "firmware update cancelled"}
#: Update Results no retry of the same image and method can change.
PERMANENT_RESULTS = frozenset({2, 6, 9})
STATE, RESULT = "/5/0/3", "/5/0/5"


class JobFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def result_failure(result: int) -> JobFailed:
    name = RESULTS.get(result, f"Update Result {result}")
    return JobFailed(f"the device reports {name} (Update Result {result})",
                     permanent=result in PERMANENT_RESULTS)


class UpdateServices(Protocol):
    """What a job needs of the firmware service."""

    @property
    def server(self) -> Any: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def device_events(self) -> DeviceEvents: ...

    def now(self) -> float: ...

    def image(self, sha256: str) -> FirmwareImage | None: ...

    async def image_content(self, sha256: str) -> bytes: ...

    async def save_job(self, job: UpdateJob) -> None: ...

    def job_progressed(self, job: UpdateJob) -> None: ...


def _poll_interval(timeout: float) -> float:
    """Observations carry the news; polls are the fallback for lost notifications."""
    return max(0.5, min(30.0, timeout / 10))


class DeviceUpdate:
    """One attempt of one job (or its continuation after a restart)."""

    def __init__(self, services: UpdateServices, job: UpdateJob, limits: CampaignLimits, *,
                 resume: bool = False) -> None:
        self.s = services
        self.job = job
        self.limits = limits
        self.resume = resume
        #: Set before the task is cancelled by a campaign's cancel; a cancellation without
        #: it is the service stopping, and the job is left to be resumed.
        self.cancel_reason: str | None = None
        self._watcher: Watcher | None = None
        self._delivery: Delivery | None = None
        self._observed: list[str] = []
        self._state: int | None = None
        self._result: int | None = None

    @property
    def endpoint(self) -> str:
        return self.job.endpoint

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> UpdateJob:
        self._watcher = Watcher(self.s.device_events, self.endpoint)
        if self.resume and self.job.token:
            # Opened by the service at start for a download in progress: ours to close.
            self._delivery = self.s.deliveries.find(self.job.token)
        try:
            image = self.s.image(self.job.image)
            if image is None:
                raise JobFailed("the image was removed", permanent=True)
            await self._attempt(image)
        except JobFailed as e:
            await self._failed(e)
        except asyncio.CancelledError:
            if self.cancel_reason is None:
                raise  # the service stops: the job is resumed at the next start
            await self._cancelled(self.cancel_reason)
        finally:
            await self._close()
        return self.job

    async def _save(self, step: str, detail: str = "", **changes: Any) -> None:
        self.job = self.job.with_step(self.s.now(), step, detail, **changes)
        await self.s.save_job(self.job)

    async def _attempt(self, image: FirmwareImage) -> None:
        prior = self.job.state
        resuming = self.resume and self.job.active
        await self._reachable()
        if resuming:
            await self._save("resumed", f"after a restart of the server, in state {prior}")
        else:
            now = self.s.now()
            await self._save("started", f"attempt {self.job.attempt + 1} of "
                             f"{self.limits.max_attempts}", state=STARTING,
                             attempt=self.job.attempt + 1, started_at=self.job.started_at or now,
                             progress=0.0, reason="", next_attempt_at=None,
                             waiting_since=None, method=None, token="")
        version = await self._read_value("/3/0/3")
        if version is not None and str(version) == image.version:
            done = prior in (UPDATING, VERIFYING)
            await self._succeed(f"{'now' if done else 'already'} at version {version}")
            return
        if self.job.from_version is None and version is not None:
            self.job = self.job.with_changes(from_version=str(version))
        if image.device_types:
            device_type = await self._read_value("/3/0/17")
            if device_type is None or str(device_type) not in image.device_types:
                raise JobFailed(f"the device's type {device_type!r} is not one of the image's "
                                f"({', '.join(image.device_types)})", permanent=True)
        fw = await self._read_firmware()
        self._state, self._result = fw.get(3), fw.get(5)
        await self._observe()
        if resuming and (prior in (UPDATING, VERIFYING) or self._state == UPDATING_STATE):
            if self._state == DOWNLOADED_STATE and self._result == INITIAL:
                # The server stopped between recording Update and sending it.
                await self._trigger()
            await self._await_outcome(image)
            return
        reg = await self._reachable()
        if resuming and self._state == DOWNLOADED_STATE and prior in (DOWNLOADING, DOWNLOADED):
            await self._save("downloaded", "the device holds the package", state=DOWNLOADED,
                             progress=1.0)
        elif (resuming and self._state == DOWNLOADING_STATE and prior == DOWNLOADING
              and self.job.token and self.job.method not in (None, PUSH)):
            await self._offer(image, self.job.token)
            await self._until_downloaded()
            await self._save("downloaded", "the device holds the package", state=DOWNLOADED,
                             progress=1.0)
        else:
            if self._state not in (None, IDLE):
                await self._reset(fw)
            await self._deliver(image, reg, fw)
        await self._trigger()
        await self._await_outcome(image)

    # -- device requests -------------------------------------------------------------------

    async def _reachable(self) -> Registration:
        """The device's registration once it is registered and awake (queue mode)."""
        server = self.s.server
        deadline = time.monotonic() + self.limits.device_wait
        while True:
            reg: Registration | None = server.registrations.get(self.endpoint)
            if reg is not None and server.queue.is_awake(reg):
                return reg
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobFailed("the device is not registered" if reg is None
                                else "the device did not wake up")
            assert self._watcher is not None
            await self._watcher.next(min(left, 5.0))

    async def _request(self, what: str, op: Operation, timeout: float | None = None
                       ) -> Response:
        await self._reachable()
        try:
            response: Response = await self.s.server.send(
                self.endpoint, op, timeout=timeout or self.limits.request_timeout,
                queue_ttl=self.limits.device_wait)
        except NotRegistered:
            raise JobFailed(f"{what}: the device is not registered") from None
        except (RequestFailed, QueueExpired, TimeoutError):
            raise JobFailed(f"{what}: the device did not answer") from None
        return response

    async def _read_value(self, path: str) -> Any:
        response = await self._request(f"Read {path}", ReadRequest(LwM2MPath.parse(path)))
        if response.code_text == "4.04":
            return None
        if not response.success or not isinstance(response, ReadResponse):
            raise JobFailed(f"Read {path} answered {response.code_text}")
        content = response.content
        return content.value if isinstance(content, SingleResource) else None

    async def _read_firmware(self) -> dict[int, Any]:
        response = await self._request("Read /5/0", ReadRequest(LwM2MPath.parse("/5/0")))
        if response.code_text in ("4.04", "4.05"):
            raise JobFailed(f"the device has no readable Firmware Update object (/5/0: "
                            f"{response.code_text})", permanent=True)
        if not response.success or not isinstance(response, ReadResponse) or not isinstance(
                response.content, ObjectInstance):
            raise JobFailed(f"Read /5/0 answered {response.code_text}")
        out: dict[int, Any] = {}
        for rid, res in response.content.resources.items():
            if isinstance(res, SingleResource):
                out[rid] = res.value
            elif isinstance(res, MultipleResource):
                out[rid] = list(res.instances.values())
        return out

    async def _write(self, path: str, value: Any, timeout: float | None = None) -> Response:
        p = LwM2MPath.parse(path)
        try:
            node = self.s.server.build(self.endpoint, p, value)
        except NotRegistered:
            raise JobFailed(f"Write {path}: the device is not registered") from None
        return await self._request(f"Write {path}", WriteRequest(p, node, True, None), timeout)

    async def _observe(self) -> None:
        server = self.s.server
        for path in (STATE, RESULT):
            reg = server.registrations.get(self.endpoint)
            if reg is None or server.observations.find(reg.id, (path,)) is not None:
                continue
            with contextlib.suppress(JobFailed):
                response = await self._request(f"Observe {path}",
                                               ObserveRequest(LwM2MPath.parse(path)))
                if response.success:
                    self._observed.append(path)

    # -- the steps -------------------------------------------------------------------------

    async def _reset(self, fw: dict[int, Any]) -> None:
        """Back to Idle from what an earlier try left (Downloading, Downloaded)."""
        if self._state == UPDATING_STATE:
            raise JobFailed("the device is busy updating already")
        pull = fw.get(9) in (None, 0, 2)
        path, value = ("/5/0/1", "") if pull else ("/5/0/0", b"")
        response = await self._write(path, value)
        state = await self._read_value(STATE)
        if not response.success or state not in (None, IDLE):
            raise JobFailed(f"could not bring Object 5 back to Idle from state {self._state} "
                            f"(Write {path} answered {response.code_text})")
        await self._save("reset", f"Object 5 was in state {self._state}; back to Idle")
        self._state, self._result = IDLE, INITIAL

    async def _deliver(self, image: FirmwareImage, reg: Registration, fw: dict[int, Any]
                       ) -> None:
        protocols = fw.get(8)
        try:
            method = choose(self.limits.method, transport=reg.transport,
                            secure=reg.identity is not None,
                            protocols=protocols if isinstance(protocols, list) else None,
                            delivery=fw.get(9), offered=self.s.deliveries.offered(),
                            credentials=reg.identity is not None
                            or self.s.server.stores.security.get(self.endpoint) is not None)
        except NoMethod as e:
            raise JobFailed(str(e), permanent=True) from None
        if method == PUSH:
            await self._save("pushing", f"{image.size} bytes by Block1 Write of /5/0/0",
                             state=DOWNLOADING, method=PUSH)
            content = await self.s.image_content(image.sha256)
            response = await self._write("/5/0/0", content, self.limits.download_timeout)
            if not response.success:
                raise JobFailed(f"Write of the package answered {response.code_text}")
            state = await self._read_value(STATE)
            if state != DOWNLOADED_STATE:
                result = await self._read_value(RESULT)
                raise result_failure(int(result)) if result else JobFailed(
                    f"after the package was written the device is in state {state}")
        else:
            token = new_token()
            delivery = await self._offer(image, token)
            uri = self.s.deliveries.uri(delivery, method, reg)
            await self._save("downloading", f"Package URI {uri}", state=DOWNLOADING,
                             method=method, token=token, progress=0.0)
            response = await self._write("/5/0/1", uri)
            if not response.success:
                raise JobFailed(f"Write of the Package URI answered {response.code_text}")
            # What was read before is stale now (a result of an earlier try, say).
            self._state, self._result = DOWNLOADING_STATE, INITIAL
            await self._until_downloaded()
        await self._save("downloaded", "the device holds the package", state=DOWNLOADED,
                         progress=1.0)

    async def _offer(self, image: FirmwareImage, token: str) -> Delivery:
        old = self._delivery
        if old is not None and old.token != token:
            self.s.deliveries.close(old.token)
        delivery = await self.s.deliveries.open(token, self.job.id, self.endpoint, image)
        delivery.on_progress = self._progressed
        self._delivery = delivery
        return delivery

    def _progressed(self, delivery: Delivery) -> None:
        fraction = min(1.0, delivery.served / max(1, delivery.image.size))
        if fraction - self.job.progress >= 0.01 or fraction >= 1.0 > self.job.progress:
            self.job = self.job.with_changes(progress=fraction)
            self.s.job_progressed(self.job)

    async def _until_downloaded(self) -> None:
        timeout = self.limits.download_timeout
        deadline = time.monotonic() + timeout
        poll = _poll_interval(timeout)
        next_poll = time.monotonic() + poll
        while True:
            if self._state == DOWNLOADED_STATE:
                return
            if self._state == IDLE and self._result not in (None, INITIAL, SUCCESS):
                raise result_failure(int(self._result or 0))
            now = time.monotonic()
            if now >= deadline:
                raise JobFailed(f"the download did not finish within {timeout:g} s "
                                f"({self.job.progress:.0%} fetched)")
            if now >= next_poll:
                next_poll = now + poll
                await self._poll()
                continue
            await self._next_event(min(deadline, next_poll) - now)

    async def _trigger(self) -> None:
        await self._save("updating", "Update (/5/0/2) executed", state=UPDATING)
        response = await self._request("Execute /5/0/2", ExecuteRequest(
            LwM2MPath.parse("/5/0/2"), ""))
        if not response.success:
            raise JobFailed(f"Execute Update answered {response.code_text}")
        self._result = None

    async def _await_outcome(self, image: FirmwareImage) -> None:
        timeout = self.limits.update_timeout
        deadline = time.monotonic() + timeout
        poll = _poll_interval(timeout)
        next_poll = time.monotonic() + poll
        success_reported = False
        while True:
            if self._result not in (None, INITIAL, SUCCESS):
                raise result_failure(int(self._result or 0))
            if self._result == SUCCESS and not success_reported:
                success_reported = True
                if await self._verify(image, final=False):
                    return
            now = time.monotonic()
            if now >= deadline:
                # What arrived while a request to the device was waiting counts first.
                while (ev := await self._next_event(0)) is not None:
                    if isinstance(ev, Registered):
                        await self._reregistered(image, ev)
                        return
                await self._timed_out(image, timeout, success_reported)
                return
            if now >= next_poll:
                next_poll = now + poll
                await self._poll()
                continue
            ev = await self._next_event(min(deadline, next_poll) - now)
            if isinstance(ev, Registered):
                await self._reregistered(image, ev)
                return

    async def _reregistered(self, image: FirmwareImage, ev: Registered) -> None:
        await self._save("re-registered", f"registration {ev.registration.id}")
        await self._verify(image, final=True)

    async def _timed_out(self, image: FirmwareImage, timeout: float, success: bool) -> None:
        """No news within the update timeout: a device still there says where it is."""
        server = self.s.server
        reg = server.registrations.get(self.endpoint)
        if reg is not None and server.queue.is_awake(reg):
            version = None
            with contextlib.suppress(JobFailed):
                version = await self._read_value("/3/0/3")
            if version is not None and str(version) == image.version:
                await self._succeed(f"now at version {version}")
                return
            if version is not None:
                raise JobFailed(f"the device is still at version {version} "
                                f"{timeout:g} s after Update"
                                + (" although it reports success (Update Result 1)"
                                   if success else ""))
        raise JobFailed(f"the device did not come back with version {image.version} within "
                        f"{timeout:g} s" + (" (it reported success, Update Result 1, before "
                                            "it went)" if success else ""))

    async def _verify(self, image: FirmwareImage, *, final: bool) -> bool:
        if self.job.state != VERIFYING:
            await self._save("verifying", "reading the firmware version /3/0/3",
                             state=VERIFYING)
        try:
            version = await self._read_value("/3/0/3")
        except JobFailed:
            if final:
                raise
            return False
        if version is not None and str(version) == image.version:
            await self._succeed(f"now at version {version}")
            return True
        if not final:
            return False
        result = None
        with contextlib.suppress(JobFailed):
            result = await self._read_value(RESULT)
        if result not in (None, INITIAL, SUCCESS):
            raise result_failure(int(result))
        raise JobFailed(f"the device came back with version {version}, not {image.version}")

    async def _poll(self) -> None:
        """Read State and Update Result (when the device can be reached now)."""
        server = self.s.server
        reg = server.registrations.get(self.endpoint)
        if reg is None or not server.queue.is_awake(reg):
            return
        with contextlib.suppress(JobFailed):
            state = await self._read_value(STATE)
            result = await self._read_value(RESULT)
            self._state = None if state is None else int(state)
            self._result = None if result is None else int(result)

    async def _next_event(self, timeout: float) -> Any:
        """Wait for the next event about the device; notifications update State and Result.
        A registration that ended or began is a reason to poll at once."""
        assert self._watcher is not None
        ev = await self._watcher.next(timeout)
        if isinstance(ev, NotificationReceived):
            content = ev.response.content
            if isinstance(content, SingleResource) and ev.observation.paths in (
                    (STATE,), (RESULT,)):
                if ev.observation.paths == (STATE,):
                    self._state = int(content.value)  # type: ignore[arg-type]
                else:
                    self._result = int(content.value)  # type: ignore[arg-type]
        elif isinstance(ev, Deregistered | Expired):
            self._observed.clear()  # gone with the registration
        return ev

    # -- endings ---------------------------------------------------------------------------

    async def _succeed(self, detail: str) -> None:
        await self._save("succeeded", detail, state=SUCCEEDED, progress=1.0,
                         finished_at=self.s.now(), reason="", next_attempt_at=None)

    async def _failed(self, e: JobFailed) -> None:
        attempt = max(1, self.job.attempt)
        if e.permanent or attempt >= self.limits.max_attempts:
            await self._save("failed", e.reason, state=FAILED, reason=e.reason,
                             finished_at=self.s.now(), next_attempt_at=None)
            return
        delay = self.limits.backoff(attempt)
        await self._save("attempt failed", f"{e.reason}; next attempt in {delay:g} s",
                         state=RETRYING, reason=e.reason,
                         next_attempt_at=self.s.now() + delay)

    async def _cancelled(self, reason: str) -> None:
        if self.job.state in (STARTING, DOWNLOADING, DOWNLOADED):
            # Leave the device as it was: drop the package it got (best effort).
            with contextlib.suppress(JobFailed, asyncio.CancelledError):
                async with asyncio.timeout(self.limits.request_timeout):
                    path, value = (("/5/0/0", b"") if self.job.method == PUSH
                                   else ("/5/0/1", ""))
                    await self._write(path, value)
        await self._save("cancelled", reason, state=CANCELLED, reason=reason,
                         finished_at=self.s.now(), next_attempt_at=None)

    async def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._delivery is not None:
            self.s.deliveries.close(self._delivery.token)
            self._delivery = None
        if not self.job.active:
            # Ended (not stopped with the service): the observations this job made go too.
            server = self.s.server
            reg = server.registrations.get(self.endpoint)
            for path in self._observed:
                if reg is not None:
                    with contextlib.suppress(Exception):
                        await server.cancel_observation(self.endpoint, path, active=False)
            self._observed.clear()

