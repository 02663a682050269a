"""Device groups in Redis: one string per group (layout: :mod:`.redis_records`), read at
open, written through the LwM2M stores' writer."""

from __future__ import annotations

import json
import logging

from aiolwm2m.log_throttle import LogThrottle

from .group_store import DeviceGroup, MemoryGroupStore, group_from_dict, group_to_dict
from .redis_keys import Keys
from .redis_records import glob_escape, group_key, read_all, scan_keys
from .redis_stores import quiet
from .redis_writer import Command, RedisWriter

log = logging.getLogger(__name__)
_skipped = LogThrottle(log, interval=10.0, burst=5)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class RedisGroupStore(MemoryGroupStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys

    @classmethod
    async def open(cls, writer: RedisWriter, keys: Keys) -> RedisGroupStore:
        store = cls(writer, keys)
        names = await scan_keys(writer.client, glob_escape(group_key(keys, "")[:-1]) + "*")
        for name, value in await read_all(writer.client, names, "GET"):
            try:
                group = group_from_dict(json.loads(value))
            except (ValueError, UnicodeDecodeError) as e:
                _skipped.warning("unreadable", "skipped an unreadable device group in "
                                 "Redis: %s", e)
                continue
            if group_key(keys, group.name) == name:
                store._groups[group.name] = group
        return store

    def _set(self, group: DeviceGroup) -> Command:
        return ("SET", group_key(self._keys, group.name), _ENCODE(group_to_dict(group)))

    async def _write(self, command: Command, undo: Command) -> None:
        """Durable when this returns. When Redis did not acknowledge it, the write may
        still land later (the writer keeps it queued): the undo, queued behind it, brings
        Redis back to what memory holds."""
        try:
            await self._writer.submit((command,))
        except BaseException:
            quiet(self._writer.submit((undo,)))
            raise

    async def put(self, group: DeviceGroup) -> None:
        old = self.get(group.name)
        undo = (self._set(old) if old is not None
                else ("DEL", group_key(self._keys, group.name)))
        await self._write(self._set(group), undo)
        await super().put(group)

    async def remove(self, name: str) -> DeviceGroup | None:
        old = self.get(name)
        if old is None:
            return None
        await self._write(("DEL", group_key(self._keys, name)), self._set(old))
        return await super().remove(name)
