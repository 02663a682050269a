"""Resource values (``aiolwm2m.history``) in Redis: a stream per device, in its slot.

Layout (the endpoint's hash tag, as its other keys: :mod:`aiolwm2m.store.redis_keys`)::

    NS:{e:EP}:h     stream  samples in recording order; entry id "SEQ-0", field s = JSON
                            [seq, path, time, type, value, source]
    NS:{e:EP}:lv    hash    latest value of each path: path -> "TIME JSON"

Recording never waits: samples gather for ``flush_interval`` and go out as one script per
device (its stream entries and latest values, one slot: atomic) over a connection and
writer of their own, so a notification storm does not lengthen the pipelines that
registrations wait on. Sequence numbers are the store's recording order, as in the SQLite
store, and are the stream ids, so "beyond ``max_samples`` the earliest recorded go first"
is one ``XTRIM MINID`` per device that holds any of them.

The store keeps a few numbers per device in memory (samples held, the first one's
sequence and time, latest values held) to know which devices retention has to visit.
Retention by age removes old samples from the head of each stream (samples are recorded
roughly in time order); a sample recorded late with an old timestamp (a Send of buffered
data) further in is not removed then but no longer shown: reads leave out everything older
than the last applied cutoff. Reads first make what was recorded durable (so they see it),
then read the device's keys; a device with more than ``max_scan`` samples held is refused
with :class:`~aiolwm2m.history.store.QueryTooBroad`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store import redis_scripts as scripts
from aiolwm2m.store.redis_connect import RedisTarget, connect
from aiolwm2m.store.redis_keys import Keys, slot_tag
from aiolwm2m.store.redis_records import LOAD_CHUNK, between, scan_keys
from aiolwm2m.store.redis_writer import Command, RedisWriter

from .device_key import device_key
from .samples import PathValue, PlainValue, ValueSample, typed_from_store, under
from .store import MAX_QUERY_SAMPLES, QueryTooBroad, Retention, ValueStoreStats

log = logging.getLogger(__name__)
_throttled = LogThrottle(log, interval=10.0, burst=3)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

#: KEYS: the device's stream, its latest-values hash. ARGV: n, then n pairs (seq, sample
#: JSON), then triples (path, time, "TIME JSON") of the newest value of each path in the
#: batch. Idempotent: an entry already there (the batch sent again after an outage) is not
#: added twice; an id below the stream's last (another process recorded this device with
#: higher sequences) falls back to an automatic one. Returns the new latest paths.
RECORD = scripts.Script("record_values", """
local n = tonumber(ARGV[1])
local i = 2
for _ = 1, n do
  local id = ARGV[i] .. '-0'
  local ok = redis.pcall('XADD', KEYS[1], id, 's', ARGV[i + 1])
  if type(ok) == 'table' and ok.err and #redis.call('XRANGE', KEYS[1], id, id) == 0 then
    redis.call('XADD', KEYS[1], '*', 's', ARGV[i + 1])
  end
  i = i + 2
end
local added = 0
while i <= #ARGV do
  local current = redis.call('HGET', KEYS[2], ARGV[i])
  if not current then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
    added = added + 1
  elseif tonumber(ARGV[i + 1]) >= tonumber(string.match(current, '^(%S+) ')) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
  i = i + 3
end
return added
""")

#: Entries read per round when retention walks a stream from its head.
_CHUNK = 500
_Row = tuple[str, str, float, str, PlainValue, str, int]


def _plain_json(value: PlainValue) -> Any:
    return {"b": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def _sample_json(row: _Row) -> str:
    _, path, at, rtype, value, source, seq = row
    return _ENCODE([seq, path, at, rtype, _plain_json(value), source])


def _sample(endpoint: str, text: Any) -> ValueSample:
    seq, path, at, rtype, value, source = json.loads(text)
    if isinstance(value, dict):
        value = base64.b64decode(value["b"])
    return ValueSample(endpoint, str(path), at, str(rtype), typed_from_store(rtype, value),
                       str(source), int(seq))


def _entry_seq(entry_id: Any) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-", 1)[0])


class _Device:
    """What retention needs to know of one device without asking Redis."""

    __slots__ = ("count", "head_seq", "head_time", "latest", "latest_oldest")

    def __init__(self) -> None:
        self.count = 0
        #: Sequence and time of the first sample in its stream (None: unknown).
        self.head_seq: int | None = None
        self.head_time: float | None = None
        self.latest = 0
        #: Time of its oldest latest value (-inf: unknown).
        self.latest_oldest = float("-inf")


class RedisValueStore:
    def __init__(self, writer: RedisWriter, keys: Keys, retention: Retention,
                 clock: Callable[[], float] = time.time, *, flush_interval: float = 0.05,
                 max_buffered: int = 100_000, own_writer: bool = False) -> None:
        self._writer = writer
        self._keys = keys
        self.retention = retention
        self.clock = clock
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        #: Most samples of one device a read goes through (QueryTooBroad beyond).
        self.max_scan = 200_000
        self.stats = ValueStoreStats()
        self._own_writer = own_writer
        self._loop = asyncio.get_running_loop()
        self._devices: dict[str, _Device] = {}
        self._seq = 0
        self._pending: list[_Row] = []
        self._unconfirmed: dict[asyncio.Future[Any], int] = {}
        self._buffered = 0
        #: Samples and latest values older than this are no longer shown (see module doc).
        self._cutoff = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, target: RedisTarget | str, *, retention: Retention | None = None,
                   clock: Callable[[], float] = time.time, flush_interval: float = 0.05,
                   max_buffered: int = 100_000, **writer_options: Any) -> RedisValueStore:
        """A store over a connection of its own (StoreOpenError when Redis cannot be used);
        reads the figures of every device with values."""
        if isinstance(target, str):
            target = RedisTarget.parse(target)
        client = await connect(target)
        slot_tag(0)
        writer = RedisWriter(client, target=target.address, **writer_options)
        store = cls(writer, Keys(target.namespace), retention or Retention(), clock,
                    flush_interval=flush_interval, max_buffered=max_buffered,
                    own_writer=True)
        try:
            await writer.load_scripts()
            await store._load()
        except BaseException:
            await writer.aclose()
            raise
        return store

    def _keys_of(self, endpoint: str) -> tuple[str, str]:
        return self._keys.endpoint(endpoint, "h"), self._keys.endpoint(endpoint, "lv")

    async def _load(self) -> None:
        client = self._writer.client
        prefix = f"{self._keys.ns}:{{e:"
        streams: list[tuple[str, str]] = []
        hashes: list[tuple[str, str]] = []
        for key in await scan_keys(client, self._keys.pattern):
            endpoint = between(key, prefix, "}:h")
            if endpoint is not None:
                streams.append((endpoint, key))
            endpoint = between(key, prefix, "}:lv")
            if endpoint is not None:
                hashes.append((endpoint, key))
        for start in range(0, len(streams), LOAD_CHUNK):
            chunk = streams[start:start + LOAD_CHUNK]
            pipe = client.pipeline(transaction=False)
            for _, key in chunk:
                pipe.execute_command("XLEN", key)
                pipe.execute_command("XRANGE", key, "-", "+", "COUNT", 1)
                pipe.execute_command("XREVRANGE", key, "+", "-", "COUNT", 1)
            replies = await pipe.execute()
            for i, (endpoint, _) in enumerate(chunk):
                count, head, last = replies[3 * i:3 * i + 3]
                if not head:
                    continue
                device = self._device(endpoint)
                device.count = int(count)
                try:
                    first = _sample(endpoint, head[0][1][b"s"])
                except (ValueError, TypeError, KeyError, IndexError) as e:
                    _throttled.warning("unreadable", "unreadable value in Redis: %s", e)
                else:
                    device.head_seq, device.head_time = first.seq, first.time
                self._seq = max(self._seq, _entry_seq(last[0][0]))
        for endpoint, key in hashes:
            self._device(endpoint).latest = int(await client.hlen(key))

    def _device(self, endpoint: str) -> _Device:
        device = self._devices.get(endpoint)
        if device is None:
            device = self._devices[endpoint] = _Device()
        return device

    # -- recording ------------------------------------------------------------------------

    def record(self, endpoint: str, time: float, source: str, values: Sequence[PathValue]
               ) -> None:
        endpoint = device_key(endpoint)
        count = len(values)
        if self._closed or count > self.max_buffered - self._buffered:
            self.stats.dropped += count
            if not self._closed:
                _throttled.warning("values-dropped", "values store behind: %d values not "
                                   "kept (%d waiting to be written)", count, self._buffered)
            return
        seq = self._seq
        self._pending.extend((endpoint, path, time, rtype, value, source, seq + i)
                             for i, (path, rtype, value) in enumerate(values, 1))
        self._seq = seq + count
        self._buffered += count
        self.stats.recorded += count
        if self._timer is None and count:
            self._timer = self._loop.call_later(self.flush_interval, self._hand_over)

    def _hand_over(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        batch, self._pending = self._pending, []
        by_device: dict[str, list[_Row]] = {}
        for row in batch:
            by_device.setdefault(row[0], []).append(row)
        for endpoint, rows in by_device.items():
            newest: dict[str, _Row] = {}
            for row in rows:
                old = newest.get(row[1])
                if old is None or row[2] >= old[2]:
                    newest[row[1]] = row
            args: list[Any] = [len(rows)]
            for row in rows:
                args += (row[6], _sample_json(row))
            for row in newest.values():
                args += (row[1], repr(float(row[2])),
                         f"{float(row[2])!r} {_sample_json(row)}")
            stream, latest = self._keys_of(endpoint)
            future = self._writer.call(("EVAL", RECORD.body, 2, stream, latest, *args))
            self._unconfirmed[future] = len(rows)
            future.add_done_callback(self._written)
            device = self._device(endpoint)
            if device.count == 0 or device.head_seq is None:
                first = rows[0]
                device.head_seq, device.head_time = first[6], first[2]
            device.count += len(rows)
            device.latest_oldest = min(device.latest_oldest,
                                       min(r[2] for r in newest.values()))
            future.add_done_callback(functools.partial(self._latest_added, device))

    @staticmethod
    def _latest_added(device: _Device, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            device.latest += int(future.result())

    def _written(self, future: asyncio.Future[Any]) -> None:
        count = self._unconfirmed.pop(future, 0)
        self._buffered -= count
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            # Still queued in the writer (it sends it once Redis is back) unless refused.
            _throttled.warning("values-write", "values store: %d values not acknowledged by "
                               "Redis: %s", count, error)

    async def flush(self) -> None:
        self._hand_over()
        if self._unconfirmed:
            await asyncio.gather(*self._unconfirmed, return_exceptions=True)

    # -- reading --------------------------------------------------------------------------

    async def latest(self, endpoint: str, prefix: str = "") -> list[ValueSample]:
        endpoint = device_key(endpoint)
        await self.flush()
        stored = await self._writer.call(("HGETALL", self._keys_of(endpoint)[1]))
        out = []
        for path, value in (stored or {}).items():
            name = path.decode() if isinstance(path, bytes) else str(path)
            if not under(name, prefix):
                continue
            sample = _sample(endpoint, value.split(b" ", 1)[1])
            if sample.time >= self._cutoff:
                out.append(sample)
        out.sort(key=lambda s: s.path)
        return out

    async def history(self, endpoint: str, prefix: str = "", since: float | None = None,
                      until: float | None = None, limit: int = 1000) -> list[ValueSample]:
        endpoint = device_key(endpoint)
        limit = max(0, min(limit, MAX_QUERY_SAMPLES))
        await self.flush()
        device = self._devices.get(endpoint)
        if device is None or limit == 0:
            return []
        if device.count > self.max_scan:
            raise QueryTooBroad(f"this device holds {device.count} values, more than a "
                                f"history read goes through ({self.max_scan}): ask for its "
                                "latest values, or lower values_max_samples")
        entries = await self._writer.call(("XRANGE", self._keys_of(endpoint)[0], "-", "+"))
        low = self._cutoff if since is None else max(since, self._cutoff)
        found = []
        for _, fields in entries or ():
            sample = _sample(endpoint, fields[b"s"])
            if (under(sample.path, prefix) and sample.time >= low
                    and (until is None or sample.time <= until)):
                found.append(sample)
        found.sort(key=lambda s: (s.time, s.seq))
        return found[-limit:]

    # -- forgetting and retention ---------------------------------------------------------

    async def forget(self, endpoint: str) -> None:
        endpoint = device_key(endpoint)
        kept = [r for r in self._pending if r[0] != endpoint]
        self._buffered -= len(self._pending) - len(kept)
        self._pending = kept
        await self.flush()
        self._devices.pop(endpoint, None)
        await self._writer.submit((("DEL", *self._keys_of(endpoint)),))

    async def prune(self, now: float) -> None:
        await self.flush()
        cutoff = now - self.retention.max_age
        self._cutoff = max(self._cutoff, cutoff)
        for endpoint, device in list(self._devices.items()):
            if device.head_time is None or device.head_time < cutoff:
                await self._trim_old(endpoint, device, cutoff)
        threshold = self._seq - self.retention.max_samples
        for endpoint, device in list(self._devices.items()):
            if device.count and (device.head_seq is None or device.head_seq <= threshold):
                removed = await self._writer.call(
                    ("XTRIM", self._keys_of(endpoint)[0], "MINID", f"{threshold + 1}-0"))
                device.count = max(0, device.count - int(removed or 0))
                await self._read_head(endpoint, device)
        await self._prune_latest(cutoff)
        for endpoint, device in list(self._devices.items()):
            if device.count == 0 and device.latest == 0:
                del self._devices[endpoint]

    async def _read_head(self, endpoint: str, device: _Device) -> None:
        head = await self._writer.call(("XRANGE", self._keys_of(endpoint)[0], "-", "+",
                                        "COUNT", 1))
        if head:
            sample = _sample(endpoint, head[0][1][b"s"])
            device.head_seq, device.head_time = sample.seq, sample.time
        else:
            device.count, device.head_seq, device.head_time = 0, None, None

    async def _trim_old(self, endpoint: str, device: _Device, cutoff: float) -> None:
        """Remove the samples older than ``cutoff`` from the head of the device's stream,
        a chunk at a time, while whole chunks are old."""
        stream = self._keys_of(endpoint)[0]
        while True:
            entries = await self._writer.call(("XRANGE", stream, "-", "+", "COUNT", _CHUNK))
            old = [entry_id for entry_id, fields in entries or ()
                   if _sample(endpoint, fields[b"s"]).time < cutoff]
            if old:
                removed = await self._writer.call(("XDEL", stream, *old))
                device.count = max(0, device.count - int(removed or 0))
            if not entries or len(old) < len(entries) or len(entries) < _CHUNK:
                break
        await self._read_head(endpoint, device)

    async def _prune_latest(self, cutoff: float) -> None:
        """Latest values older than ``cutoff`` go, then the oldest beyond ``max_samples``
        (a tenth more, so that a stream of new paths sorts once in a while). A value is
        removed only while it is still the one read (a newer one recorded meanwhile
        stays)."""
        keep = self.retention.max_samples
        total = sum(d.latest for d in self._devices.values())
        visit = [ep for ep, d in self._devices.items()
                 if d.latest and (d.latest_oldest < cutoff or total > keep)]
        held: list[tuple[float, int, str, str, Any]] = []
        for endpoint in visit:
            device = self._devices[endpoint]
            key = self._keys_of(endpoint)[1]
            stored = await self._writer.call(("HGETALL", key))
            gone: list[Command] = []
            oldest = float("inf")
            for path, value in (stored or {}).items():
                sample = _sample(endpoint, value.split(b" ", 1)[1])
                if sample.time < cutoff:
                    gone.append(("EVALSHA", scripts.HDEL_IF.sha, 1, key, path, value))
                else:
                    oldest = min(oldest, sample.time)
                    held.append((sample.time, sample.seq, endpoint, key, (path, value)))
            device.latest = len(stored or {}) - len(gone)
            device.latest_oldest = oldest
            if gone:
                await self._writer.submit(gone)
        total = sum(d.latest for d in self._devices.values())
        if total > keep:
            held.sort(key=lambda h: (h[0], h[1]))
            drop = held[:total - keep + keep // 10]
            await self._writer.submit([("EVALSHA", scripts.HDEL_IF.sha, 1, key, *fv)
                                       for _, _, _, key, fv in drop])
            for _, _, endpoint, _, _ in drop:
                self._devices[endpoint].latest -= 1
            for endpoint in {h[2] for h in drop}:
                self._devices[endpoint].latest_oldest = float("-inf")

    def start(self) -> None:
        if self._task is None:
            self._task = self._loop.create_task(self._prune_every())

    async def _prune_every(self) -> None:
        while True:
            await asyncio.sleep(self.retention.prune_interval)
            try:
                await self.prune(self.clock())
            except Exception as e:  # Redis unreachable: the next round prunes
                _throttled.warning("values-prune", "values store: retention not applied: %s",
                                   e)

    async def close(self) -> None:
        if self._closed:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
        self._closed = True
        if self._own_writer:
            await self._writer.aclose()
