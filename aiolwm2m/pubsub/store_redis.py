"""The pub/sub broker's topics and last values in Redis (layout:
:mod:`aiolwm2m.store.redis_records`).

A topic is two strings under its own hash tag: its configuration, and its last value. A
configuration change writes both with one ``MSET`` (one slot: atomic) and is durable when
it returns; publications are written behind, as with SQLite: the newest value of each topic
that changed goes out at most ``flush_interval`` later, one ``SET`` each, in one pipeline.
A value is written only for a topic this store knows to exist, so a publication that races
the topic's deletion cannot bring back half of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.redis_connect import RedisTarget, connect
from aiolwm2m.store.redis_keys import Keys, slot_tag
from aiolwm2m.store.redis_records import b64, between, read_all, scan_keys, topic_keys, unb64
from aiolwm2m.store.redis_writer import Command, RedisWriter

from .store import StoredTopic
from .values_behind import Value, ValuesBehind

log = logging.getLogger(__name__)
_skipped = LogThrottle(log, interval=10.0, burst=5)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

def _config_json(topic: StoredTopic) -> str:
    return _ENCODE({"d": topic.data_id, "c": b64(topic.config), "t": topic.created_at,
                    "by": topic.creator})


def _value_json(value: Value) -> str:
    return _ENCODE({"v": b64(value[0]), "f": value[1], "at": value[2]})


class RedisTopicStore:
    def __init__(self, writer: RedisWriter, keys: Keys, *, flush_interval: float = 1.0,
                 own_writer: bool = False) -> None:
        self._writer = writer
        self._keys = keys
        self._own_writer = own_writer
        #: Topics stored (loaded, saved, not deleted since): those a value may be written to.
        self._known: set[str] = set()
        self._values = ValuesBehind(self._write_values, flush_interval, "Redis")

    @classmethod
    async def open(cls, target: RedisTarget | str, *, flush_interval: float = 1.0,
                   **writer_options: Any) -> RedisTopicStore:
        """A store with a connection of its own (StoreOpenError when Redis cannot be
        used)."""
        if isinstance(target, str):
            target = RedisTarget.parse(target)
        client = await connect(target)
        slot_tag(0)
        writer = RedisWriter(client, target=target.address, **writer_options)
        store = cls(writer, Keys(target.namespace), flush_interval=flush_interval,
                    own_writer=True)
        try:
            await writer.load_scripts()
            store._known = {t.id for t in await store.load()}
        except BaseException:
            await writer.aclose()
            raise
        return store

    # -- reads and configuration writes -----------------------------------------------------

    async def load(self) -> list[StoredTopic]:
        client = self._writer.client
        prefix = f"{self._keys.ns}:{{t:"
        ids = [tid for tid in (between(k, prefix, "}:c")
                               for k in await scan_keys(client, prefix + "*:c"))
               if tid is not None]
        names = [name for tid in ids for name in topic_keys(self._keys, tid)]
        values = dict(await read_all(client, names, "GET"))
        topics = []
        for tid in ids:
            config_key, value_key = topic_keys(self._keys, tid)
            config = values.get(config_key)
            if config is None:
                continue  # deleted since the scan
            try:
                c = json.loads(config)
                topic = StoredTopic(tid, str(c["d"]), unb64(c["c"]) or b"", float(c["t"]),
                                    None if c["by"] is None else str(c["by"]))
                stored = values.get(value_key)
                if stored is not None:
                    v = json.loads(stored)
                    topic.value = unb64(v["v"])
                    topic.value_format = None if v["f"] is None else int(v["f"])
                    topic.published_at = None if v["at"] is None else float(v["at"])
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
                _skipped.warning("unreadable", "skipped an unreadable topic in Redis: %s", e)
                continue
            topics.append(topic)
        topics.sort(key=lambda t: (t.created_at, t.id))
        return topics

    async def save_topic(self, topic: StoredTopic) -> None:
        # The topic carries its value as it is now; an older unwritten one must not follow.
        self._values.discard(topic.id)
        config_key, value_key = topic_keys(self._keys, topic.id)
        self._known.add(topic.id)
        await self._writer.submit((("MSET", config_key, _config_json(topic), value_key,
                                    _value_json((topic.value, topic.value_format,
                                                 topic.published_at))),))

    async def delete_topic(self, topic_id: str) -> None:
        self._values.discard(topic_id)
        self._known.discard(topic_id)
        await self._writer.submit((("DEL", *topic_keys(self._keys, topic_id)),))

    # -- values, written behind -------------------------------------------------------------

    def set_value(self, topic_id: str, value: bytes | None, value_format: int | None,
                  at: float | None) -> None:
        if topic_id in self._known:
            self._values.set(topic_id, (value, value_format, at))

    async def _write_values(self, batch: dict[str, Value]) -> None:
        commands: list[Command] = [("SET", topic_keys(self._keys, tid)[1], _value_json(v))
                                   for tid, v in batch.items() if tid in self._known]
        if commands:
            # A failed batch is sent again (harmless: each is a SET).
            await self._writer.submit(commands)

    async def flush(self) -> None:
        await self._values.flush()

    async def close(self) -> None:
        if self._values.closed:
            return
        try:
            await self._values.close()
        finally:
            if self._own_writer:
                with contextlib.suppress(Exception):
                    await self._writer.aclose()
