"""The Resource Directory's registrations in Redis (layout: :mod:`.redis_records`).

One string per registration under its own hash tag, and its entry in the expiry bucket of
that slot, written together by one script; the writes share the pipelines of the LwM2M
stores' writer, so an RD Register is durable before its 2.01 as a LwM2M one is. Reads come
from the in-memory map loaded at open.
"""

from __future__ import annotations

import json
import logging

from aiolwm2m.log_throttle import LogThrottle

from . import redis_scripts as scripts
from .interfaces import Commit
from .rd_records import RdRegistration, rd_registration_from_row, rd_registration_row
from .rd_store import MemoryRdStore
from .redis_keys import Keys
from .redis_records import between, rd_expiry_key, rd_key, read_all, scan_keys
from .redis_stores import row_prefix
from .redis_writer import RedisWriter

log = logging.getLogger(__name__)
_skipped = LogThrottle(log, interval=10.0, burst=5)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class RedisRdStore(MemoryRdStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._keys = keys

    @classmethod
    async def open(cls, writer: RedisWriter, keys: Keys) -> RedisRdStore:
        store = cls(writer, keys)
        prefix = f"{keys.ns}:{{rd:"
        names = [k for k in await scan_keys(writer.client, prefix + "*")
                 if between(k, prefix, "}:r") is not None]
        for _, value in await read_all(writer.client, names, "GET"):
            try:
                store._put(rd_registration_from_row(json.loads(value)))
            except (ValueError, TypeError, UnicodeDecodeError) as e:
                _skipped.warning("unreadable", "skipped an unreadable RD registration in "
                                 "Redis: %s", e)
        return store

    def put_nowait(self, registration: RdRegistration) -> Commit:
        self._put(registration)
        row = rd_key(self._keys, registration.id)
        return self._writer.submit((
            ("EVALSHA", scripts.PUT_REGISTRATION.sha, 2, row, rd_expiry_key(self._keys, row),
             _ENCODE(rd_registration_row(registration)), registration.expires_at,
             registration.id),))

    def remove_nowait(self, registration_id: str) -> tuple[RdRegistration | None, Commit]:
        reg = self._remove(registration_id)
        if reg is None:
            return None, None
        row = rd_key(self._keys, registration_id)
        return reg, self._writer.submit((
            ("EVALSHA", scripts.DELETE_REGISTRATION.sha, 2, row,
             rd_expiry_key(self._keys, row), row_prefix(registration_id), registration_id),))
