"""Firmware campaigns and their update jobs in Redis (layout: :mod:`aiolwm2m.store.redis_records`).

A campaign and its jobs share the hash tag ``{fw:CAMPAIGN}``: the campaign is a string, its
jobs one hash, so removing a campaign is one ``DEL`` of both (one slot: atomic) and a batch
of jobs one ``HSET``. Each record carries the sequence it was first stored with (kept when
it is replaced), which gives back the order :meth:`load` promises. Writes go through a
group-committing :class:`~aiolwm2m.store.redis_writer.RedisWriter` (the LwM2M stores' one
when the service runs beside them) and return once Redis has them. Images stay on disk
(:class:`~.images.DirectoryImageStore`): too large for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.redis_connect import RedisTarget, connect
from aiolwm2m.store.redis_keys import Keys, slot_tag
from aiolwm2m.store.redis_records import between, campaign_keys, read_all, scan_keys
from aiolwm2m.store.redis_writer import RedisWriter

from .records import Campaign, UpdateJob

log = logging.getLogger(__name__)
_skipped = LogThrottle(log, interval=10.0, burst=5)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class RedisFirmwareStore:
    def __init__(self, writer: RedisWriter, keys: Keys, *, own_writer: bool = False) -> None:
        self._writer = writer
        self._keys = keys
        self._own_writer = own_writer
        #: First-stored sequence of every stored campaign and job, and each job's campaign.
        self._campaign_seq: dict[str, int] = {}
        self._job_seq: dict[str, int] = {}
        self._jobs_of: dict[str, set[str]] = {}
        self._sequence = 0
        self._closed = False

    @classmethod
    def beside(cls, stores: Any) -> RedisFirmwareStore:
        """A store that shares the writer (connection, pipelines, outage state) of the
        LwM2M server's :class:`~aiolwm2m.store.redis_stores.RedisStores`."""
        return cls(stores.writer, stores.keys)

    @classmethod
    async def open(cls, target: RedisTarget | str, **writer_options: Any
                   ) -> RedisFirmwareStore:
        """A store with a connection of its own (StoreOpenError when Redis cannot be
        used)."""
        if isinstance(target, str):
            target = RedisTarget.parse(target)
        client = await connect(target)
        slot_tag(0)
        writer = RedisWriter(client, target=target.address, **writer_options)
        try:
            await writer.load_scripts()
        except BaseException:
            await writer.aclose()
            raise
        return cls(writer, Keys(target.namespace), own_writer=True)

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    async def load(self) -> tuple[list[Campaign], list[UpdateJob]]:
        client = self._writer.client
        prefix = f"{self._keys.ns}:{{fw:"
        found: dict[str, None] = {}
        for key in await scan_keys(client, prefix + "*"):
            cid = between(key, prefix, "}:c") or between(key, prefix, "}:j")
            if cid is not None:
                found[cid] = None
        ids = list(found)
        campaigns: list[tuple[int, Campaign]] = []
        for name, value in await read_all(client, [campaign_keys(self._keys, c)[0]
                                                   for c in ids], "GET"):
            try:
                seq, data = json.loads(value)
                campaign = Campaign.from_dict(data)
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
                _skipped.warning("campaign", "skipped an unreadable campaign in Redis: %s", e)
                continue
            if campaign_keys(self._keys, campaign.id)[0] != name:
                continue
            campaigns.append((int(seq), campaign))
            self._campaign_seq[campaign.id] = int(seq)
        jobs: list[tuple[int, UpdateJob]] = []
        for name, fields in await read_all(client, [campaign_keys(self._keys, c)[1]
                                                    for c in ids], "HGETALL"):
            for value in fields.values():
                try:
                    seq, data = json.loads(value)
                    job = UpdateJob.from_dict(data)
                except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
                    _skipped.warning("job", "skipped an unreadable update job in Redis: %s", e)
                    continue
                if campaign_keys(self._keys, job.campaign_id)[1] != name:
                    continue
                jobs.append((int(seq), job))
                self._job_seq[job.id] = int(seq)
                self._jobs_of.setdefault(job.campaign_id, set()).add(job.id)
        self._sequence = max([self._sequence, *self._campaign_seq.values(),
                              *self._job_seq.values()])
        campaigns.sort(key=lambda sc: sc[0])
        jobs.sort(key=lambda sj: sj[0])
        return [c for _, c in campaigns], [j for _, j in jobs]

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the firmware store is closed")

    def put_campaign(self, campaign: Campaign) -> asyncio.Future[None]:
        self._check_open()
        seq = self._campaign_seq.get(campaign.id)
        if seq is None:
            seq = self._campaign_seq[campaign.id] = self._next()
        return self._writer.submit((("SET", campaign_keys(self._keys, campaign.id)[0],
                                     _ENCODE([seq, campaign.to_dict()])),))

    def put_jobs(self, jobs: Sequence[UpdateJob]) -> asyncio.Future[None]:
        self._check_open()
        by_campaign: dict[str, list[str]] = {}
        for job in jobs:
            seq = self._job_seq.get(job.id)
            if seq is None:
                seq = self._job_seq[job.id] = self._next()
                self._jobs_of.setdefault(job.campaign_id, set()).add(job.id)
            fields = by_campaign.setdefault(job.campaign_id, [])
            fields += (job.id, _ENCODE([seq, job.to_dict()]))
        if not by_campaign:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._writer.submit([("HSET", campaign_keys(self._keys, cid)[1], *fields)
                                    for cid, fields in by_campaign.items()])

    async def remove_campaign(self, campaign_id: str) -> None:
        self._check_open()
        self._campaign_seq.pop(campaign_id, None)
        for job_id in self._jobs_of.pop(campaign_id, ()):
            self._job_seq.pop(job_id, None)
        await self._writer.submit((("DEL", *campaign_keys(self._keys, campaign_id)),))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._own_writer:
            with contextlib.suppress(Exception):
                await self._writer.aclose()
