"""The RD's policy document in Redis: one string (layout: :mod:`.redis_records`), read at
open, written through the LwM2M stores' writer."""

from __future__ import annotations

import json
import logging
from typing import Any

from .rd_policy_store import MemoryRdPolicyStore
from .redis_keys import Keys
from .redis_records import policy_key
from .redis_stores import quiet
from .redis_writer import Command, RedisWriter

log = logging.getLogger(__name__)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class RedisRdPolicyStore(MemoryRdPolicyStore):
    def __init__(self, writer: RedisWriter, keys: Keys) -> None:
        super().__init__()
        self._writer = writer
        self._key = policy_key(keys)

    @classmethod
    async def open(cls, writer: RedisWriter, keys: Keys) -> RedisRdPolicyStore:
        store = cls(writer, keys)
        value = await writer.client.get(store._key)
        if value is not None:
            try:
                stored = json.loads(value)
                document = stored["document"]
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
                store._document = (document, float(stored["updated_at"]))
            except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
                log.warning("ignored an unreadable stored RD policy: %s", e)
        return store

    def _command(self, document: tuple[dict[str, Any], float] | None) -> Command:
        if document is None:
            return ("DEL", self._key)
        return ("SET", self._key, _ENCODE({"document": document[0],
                                            "updated_at": document[1]}))

    async def _write(self, document: tuple[dict[str, Any], float] | None) -> None:
        """Durable when this returns; when Redis did not acknowledge it, the previous
        document is queued behind it (the write may still land), so Redis comes back to
        what memory holds."""
        try:
            await self._writer.submit((self._command(document),))
        except BaseException:
            quiet(self._writer.submit((self._command(self._document),)))
            raise
        self._document = document

    async def put(self, document: dict[str, Any], updated_at: float) -> None:
        await self._write((json.loads(_ENCODE(document)), updated_at))

    async def clear(self) -> None:
        await self._write(None)
