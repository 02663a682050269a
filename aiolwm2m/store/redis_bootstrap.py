"""The bootstrap server's stores in Redis: per endpoint, its configuration
(``NS:{e:EP}:bc``) and its sessions (``NS:{e:EP}:bs``, id -> [sequence, record]); see
:mod:`aiolwm2m.store.redis_keys`. Reads come from the in-memory index loaded at open,
writes return once Redis has them."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from .bootstrap_memory import MemoryBootstrapConfigStore, MemoryBootstrapSessionStore
from .bootstrap_store import BootstrapConfigRecord, BootstrapSessionRecord
from .redis_connect import RedisTarget, connect
from .redis_keys import Keys
from .redis_stores import fetch, parse_record, scan_endpoint_keys
from .redis_writer import RedisWriter

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class RedisBootstrapConfigStore(MemoryBootstrapConfigStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys

    async def put(self, record: BootstrapConfigRecord) -> BootstrapConfigRecord | None:
        old = self._put(record)
        await self._writer.submit((("SET", self._keys.endpoint(record.endpoint, "bc"),
                                    _ENCODE(record.to_dict())),))
        return old

    async def remove(self, endpoint: str) -> BootstrapConfigRecord | None:
        old = self._remove(endpoint)
        if old is not None:
            await self._writer.submit((("DEL", self._keys.endpoint(endpoint, "bc")),))
        return old


class RedisBootstrapSessionStore(MemoryBootstrapSessionStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys

    async def save(self, session: BootstrapSessionRecord) -> None:
        self._save(session)
        await self._writer.submit((("HSET", self._keys.endpoint(session.endpoint, "bs"),
                                    session.id,
                                    _ENCODE([self._order[session.id], session.to_dict()])),))

    async def _forget(self, endpoints: dict[str, str], gone: list[str]) -> int:
        if gone:
            by_endpoint: dict[str, list[str]] = defaultdict(list)
            for sid in gone:
                by_endpoint[endpoints[sid]].append(sid)
            await self._writer.submit([("HDEL", self._keys.endpoint(ep, "bs"), *ids)
                                       for ep, ids in by_endpoint.items()])
        return len(gone)

    def _endpoints(self) -> dict[str, str]:
        return {sid: s.endpoint for sid, s in self._by_id.items()}

    async def purge(self, before: float) -> int:
        endpoints = self._endpoints()
        return await self._forget(endpoints, self._purge(before))

    async def trim(self, state: str, keep: int) -> int:
        endpoints = self._endpoints()
        return await self._forget(endpoints, self._trim(state, keep))


class RedisBootstrapStores:
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        self.writer = writer
        self.configs = RedisBootstrapConfigStore(writer, keys)
        self.sessions = RedisBootstrapSessionStore(writer, keys)
        self._keys = keys

    @classmethod
    async def open(cls, target: RedisTarget | str, **writer_options: Any
                   ) -> RedisBootstrapStores:
        if isinstance(target, str):
            target = RedisTarget.parse(target)
        client = await connect(target)
        stores = cls(RedisWriter(client, target=target.address, **writer_options),
                     Keys(target.namespace))
        try:
            await stores.writer.load_scripts()
            await stores._load()
        except BaseException:
            await stores.writer.aclose()
            raise
        return stores

    async def _load(self) -> None:
        client = self.writer.client
        by_kind = await scan_endpoint_keys(client, self._keys, ("bc", "bs"))
        for _, value in await fetch(client, by_kind["bc"], "GET"):
            record = parse_record(BootstrapConfigRecord.from_dict, value)
            if record is not None:
                self.configs._put(record)
        sessions = self.sessions
        entries: list[tuple[int, BootstrapSessionRecord]] = []
        for _, fields in await fetch(client, by_kind["bs"], "HGETALL"):
            for value in fields.values():
                entry = parse_record(_session_entry, value)
                if entry is not None:
                    entries.append(entry)
        for seq, record in sorted(entries, key=lambda e: e[0]):
            sessions._by_id[record.id] = record
            sessions._order[record.id] = seq
            sessions._sequence = max(sessions._sequence, seq)

    async def close(self) -> None:
        await self.writer.aclose()


def _session_entry(data: Any) -> tuple[int, BootstrapSessionRecord]:
    seq, record = data
    return int(seq), BootstrapSessionRecord.from_dict(record)
