"""The server's NIDD configurations on the SCEF: one per device (``externalId`` or ``msisdn``)
and one per group (``externalGroupId``), created, refreshed before their ``duration`` ends,
moved to the current callback URL, and deleted.

A background worker does the T8 calls (a few at once), so neither a start nor a request
waits on the SCEF, and an SCEF that is down only delays them: the worker backs off and
tries again. At start it adopts the configurations the SCEF still holds for this SCS/AS id
(from an earlier run: the callback secret or address may have changed, so their
``notificationDestination`` is updated) and deletes those nobody wants any more. A
configuration the SCEF lost (404) or ended (TERMINATED) is created again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiolwm2m.log_throttle import LogThrottle

from . import t8_model as m
from .quota_extension import BYTE_QUOTA_FEATURE, ByteQuota, attribute_name, read_quota
from .quotas import QuotaSpec
from .scef_client import ScefUnreachable, T8Client, T8Error
from .settings import NiddSettings
from .t8_fields import date_time, feature_bits, format_date_time, has_feature

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (externalId | msisdn | externalGroupId, its value)
PENDING, ACTIVE, FAILED = "pending", "active", "failed"
#: Configurations created or refreshed at once.
CONCURRENCY = 32


@dataclass(eq=False)
class ConfigEntry:
    attribute: str
    target: str
    quota: QuotaSpec | None = None
    url: str | None = None
    #: Wall-clock end of the configuration at the SCEF.
    expires_at: float = 0.0
    #: Bits, as the SCEF said (None until created).
    maximum_packet_size: int | None = None
    quota_negotiated: bool = False
    remaining: ByteQuota | None = None
    state: str = PENDING
    error: str = ""
    #: When to try again after a refusal (wall clock).
    retry_at: float = 0.0
    wanted: bool = True

    @property
    def key(self) -> Key:
        return (self.attribute, self.target)

    @property
    def is_group(self) -> bool:
        return self.attribute == "externalGroupId"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "attribute": self.attribute, "url": self.url,
                "state": self.state, "error": self.error or None,
                "expires_at": self.expires_at or None,
                "maximumPacketSize": self.maximum_packet_size,
                "quota_extension": self.quota_negotiated,
                "remaining": self.remaining.to_json() if self.remaining else None}


class Configurations:
    def __init__(self, client: T8Client, settings: NiddSettings, callback_url: str, *,
                 clock: Callable[[], float] = time.time,
                 on_active: Callable[[ConfigEntry], None] | None = None) -> None:
        self.client = client
        self.settings = settings
        self.callback_url = callback_url
        self.clock = clock
        self.on_active = on_active
        self.entries: dict[Key, ConfigEntry] = {}
        self.by_url: dict[str, ConfigEntry] = {}
        self.quota_attribute = attribute_name(settings.vendor_pen)
        self._doomed: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = settings.backoff_initial
        self._adopted = False
        self._log = LogThrottle(log, interval=30.0, burst=5)

    # -- what is wanted -----------------------------------------------------------------------

    def want(self, attribute: str, target: str, quota: QuotaSpec | None = None) -> ConfigEntry:
        entry = self.entries.get((attribute, target))
        if entry is None:
            entry = self.entries[(attribute, target)] = ConfigEntry(attribute, target, quota)
        else:
            entry.quota = quota
            entry.wanted = True
        self._wake.set()
        return entry

    def unwant(self, attribute: str, target: str) -> None:
        entry = self.entries.pop((attribute, target), None)
        if entry is not None and entry.url is not None:
            self.by_url.pop(entry.url, None)
            self._doomed.add(entry.url)
            self._wake.set()

    def lost(self, entry: ConfigEntry, why: str) -> None:
        """The SCEF no longer has ``entry`` (404, TERMINATED): make it again."""
        log.info("NIDD configuration for %s lost (%s): creating it again", entry.target, why)
        if entry.url is not None:
            self.by_url.pop(entry.url, None)
        entry.url = None
        entry.state = PENDING
        entry.retry_at = 0.0
        self._wake.set()

    def reset(self, entry: ConfigEntry) -> None:
        """Delete ``entry`` at the SCEF and create it anew (a registration ended: nothing
        the SCEF still buffers for it may reach the next one)."""
        if entry.url is not None:
            self._doomed.add(entry.url)
        self.lost(entry, "registration ended")

    def active(self, key: Key) -> ConfigEntry | None:
        entry = self.entries.get(key)
        return entry if entry is not None and entry.url is not None else None

    # -- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="nidd-configurations")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if not self._adopted:
                    try:
                        await self._adopt()
                    except ScefUnreachable:
                        raise
                    except T8Error as e:
                        # Refused (401...): each configuration will say so as it is made.
                        self._log.warning("adopt", "listing the SCEF's configurations "
                                          "failed: %s", e)
                    self._adopted = True
                await self._delete_doomed()
                await self._work()
                self._backoff = self.settings.backoff_initial
                delay = self._next_due() - self.clock()
            except ScefUnreachable as e:
                self._log.warning("scef-down", "SCEF unreachable (%s); NIDD configurations "
                                  "wait %.1f s", e, self._backoff)
                delay = self._backoff
                self._backoff = min(self._backoff * 2, self.settings.backoff_max)
            except Exception:
                log.exception("NIDD configuration worker failed")
                delay = self.settings.backoff_max
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _due(self, entry: ConfigEntry, now: float) -> bool:
        if entry.retry_at > now:
            return False
        if entry.url is None:
            return True
        return entry.expires_at - now < self._margin()

    def _margin(self) -> float:
        return min(self.settings.refresh_margin, self.settings.configuration_duration / 2)

    def _next_due(self) -> float:
        now = self.clock()
        due = now + 3600.0
        for entry in self.entries.values():
            if entry.retry_at > now:
                due = min(due, entry.retry_at)
            elif entry.url is None:
                return now
            else:
                due = min(due, entry.expires_at - self._margin())
        return due

    async def _work(self) -> None:
        now = self.clock()
        due = [e for e in list(self.entries.values()) if self._due(e, now)]
        for i in range(0, len(due), CONCURRENCY):
            results = await asyncio.gather(*(self._make(e) for e in due[i:i + CONCURRENCY]),
                                           return_exceptions=True)
            for r in results:
                if isinstance(r, ScefUnreachable):
                    raise r
                if isinstance(r, BaseException):
                    log.error("NIDD configuration step failed", exc_info=r)

    def _duration(self) -> str:
        return format_date_time(self.clock() + self.settings.configuration_duration)

    def _extension(self, entry: ConfigEntry) -> tuple[str | None, dict[str, Any] | None]:
        q = entry.quota
        if q is None or (q.downlink_bytes is None and q.uplink_bytes is None):
            return None, None
        quota = ByteQuota(q.downlink_bytes, q.uplink_bytes, q.window)
        return feature_bits(BYTE_QUOTA_FEATURE), {self.quota_attribute: quota.to_json()}

    async def _make(self, entry: ConfigEntry) -> None:
        if self.entries.get(entry.key) is not entry:
            return
        if entry.url is not None:
            await self._refresh(entry)
            return
        features, extra = self._extension(entry)
        s = self.settings
        rds = (m.RdsPort(*s.rds_ports),) if s.rds_ports is not None else None
        ext, msisdn, group = m.identifiers(entry.attribute, entry.target)
        request = m.NiddConfiguration(
            notificationDestination=self.callback_url, externalId=ext, msisdn=msisdn,
            externalGroupId=group, duration=self._duration(), supportedFeatures=features,
            rdsPorts=rds, pdnEstablishmentOption=m.WAIT_FOR_UE)
        try:
            made, raw, url = await self.client.create_configuration(request, extra)
        except ScefUnreachable:
            raise
        except T8Error as e:
            self._refused(entry, e)
            return
        if self.entries.get(entry.key) is not entry:  # unwanted meanwhile
            self._doomed.add(url)
            return
        self._took(entry, made, raw, url)
        if s.app_id is not None and s.rds_ports is not None:
            try:
                await self.client.reserve_port(url, s.rds_ports[0], s.rds_ports[1], s.app_id)
            except T8Error as e:
                if isinstance(e, ScefUnreachable):
                    raise
                self._log.warning("port", "RDS port reservation for %s refused: %s",
                                  entry.target, e)
        log.info("NIDD configuration for %s created: %s", entry.target, url)
        if self.on_active is not None:
            self.on_active(entry)

    def _took(self, entry: ConfigEntry, made: m.NiddConfiguration, raw: dict[str, Any],
              url: str) -> None:
        entry.url = url
        self.by_url[url] = entry
        entry.state = ACTIVE
        entry.error = ""
        entry.retry_at = 0.0
        entry.maximum_packet_size = made.maximumPacketSize
        entry.quota_negotiated = has_feature(made.supportedFeatures, BYTE_QUOTA_FEATURE)
        self._read_remaining(entry, raw)
        try:
            entry.expires_at = date_time(made.duration, "/duration") if made.duration else (
                self.clock() + self.settings.configuration_duration)
        except ValueError:
            entry.expires_at = self.clock() + self.settings.configuration_duration

    def _read_remaining(self, entry: ConfigEntry, raw: dict[str, Any]) -> None:
        if entry.quota_negotiated:
            try:
                entry.remaining = read_quota(raw, self.quota_attribute)
            except ValueError as e:
                self._log.warning("extension", "SCEF's quota report is malformed: %s", e)

    def _refused(self, entry: ConfigEntry, e: T8Error) -> None:
        entry.state = FAILED
        entry.error = str(e)
        # A refusal (403 for a UE that is not allowed NIDD, 400...) will not change soon.
        entry.retry_at = self.clock() + (e.retry_after or self.settings.backoff_max * 10)
        self._log.warning(f"refused-{e.status}", "SCEF refused the NIDD configuration for "
                          "%s: %s", entry.target, e)

    async def _refresh(self, entry: ConfigEntry) -> None:
        assert entry.url is not None
        _, extra = self._extension(entry)
        patch = m.NiddConfigurationPatch(duration=self._duration(),
                                         notificationDestination=self.callback_url)
        try:
            made = await self.client.patch_configuration(entry.url, patch, extra)
        except ScefUnreachable:
            raise
        except T8Error as e:
            if e.status == 404:
                self.lost(entry, "404 on refresh")
            else:
                self._refused(entry, e)
            return
        entry.expires_at = self.clock() + self.settings.configuration_duration
        if made is not None and made.duration:
            with contextlib.suppress(ValueError):
                entry.expires_at = date_time(made.duration, "/duration")

    async def refresh_report(self, entry: ConfigEntry) -> None:
        """Read the configuration again (what is left of the byte quota)."""
        if entry.url is None:
            return
        _, raw = await self.client.get_configuration(entry.url)
        self._read_remaining(entry, raw)

    async def _delete_doomed(self) -> None:
        while self._doomed:
            url = self._doomed.pop()
            try:
                await self.client.delete_configuration(url)
            except ScefUnreachable:
                self._doomed.add(url)
                raise
            except T8Error as e:
                self._log.warning("delete", "deleting %s: %s", url, e)

    async def _adopt(self) -> None:
        """Take over what the SCEF holds for our SCS/AS id from an earlier run (whatever
        callback URL it had then: the refresh moves it to the current one)."""
        for made, raw in await self.client.list_configurations():
            url = made.self
            if not url:
                continue
            attribute = ("externalId" if made.externalId else
                         "msisdn" if made.msisdn else "externalGroupId")
            entry = self.entries.get((attribute, made.target))
            if entry is None or entry.url is not None or not self.client.owns(url):
                self._doomed.add(url)
                continue
            self._took(entry, made, raw, url)
            entry.expires_at = 0.0  # refresh at once: new callback URL, new duration
            log.info("NIDD configuration for %s adopted: %s", entry.target, url)
            if self.on_active is not None:
                self.on_active(entry)

    def close_soon(self) -> None:
        """Delete every configuration in the background (used by tests and tools)."""
        for entry in list(self.entries.values()):
            self.unwant(entry.attribute, entry.target)
