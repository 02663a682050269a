"""Where the Redis stores keep the records that are not an endpoint's: RD registrations,
device groups, the RD policy, pub/sub topics, firmware campaigns (the LwM2M endpoints'
keys are in :mod:`aiolwm2m.store.redis_keys`).

Every record has a hash tag of its own (a prefix keeps the kinds apart and the tag never
empty), so a change that touches several of its keys touches one Cluster slot: one
command (``MSET``, multi-key ``DEL``) or a Lua script, never a cross-slot transaction::

    NS:{rd:ID}:r      string  an RD registration (``rd_registration_row`` as JSON)
    NS:{TAG(s)}:rdx   zset    RD expiry: member registration id, score expires_at (s),
                              the bucket of the registration's own slot (same script)
    NS:{g:NAME}       string  a device group (``group_to_dict`` as JSON)
    NS:{rd-policy}    string  the RD's policy document and when it was stored (JSON)
    NS:{t:ID}:c       string  a pub/sub topic: data id, configuration, creator (JSON)
    NS:{t:ID}:v       string  its last value, format and time (JSON; written behind)
    NS:{fw:CID}:c     string  a firmware campaign: [sequence, Campaign JSON]
    NS:{fw:CID}:j     hash    its update jobs: job id -> [sequence, UpdateJob JSON]

Sequences (first stored, kept across replacements) give back the order the interfaces
promise at load. Each store reads everything at open and serves reads from memory, as the
SQLite ones do; writes go through the group-committing
:class:`~aiolwm2m.store.redis_writer.RedisWriter` (the one of the LwM2M stores when it is
shared), so a write that returns is in Redis, and on disk as Redis is configured to fsync.
"""

from __future__ import annotations

import base64
import sys
from typing import Any

from .redis_keys import Keys, key_slot

#: Keys read per pipeline while loading.
LOAD_CHUNK = 1000


def rd_key(keys: Keys, registration_id: str) -> str:
    return f"{keys.ns}:{{rd:{registration_id}}}:r"


def rd_expiry_key(keys: Keys, row_key: str) -> str:
    return keys.bucket(key_slot(row_key), "rdx")


def group_key(keys: Keys, name: str) -> str:
    return f"{keys.ns}:{{g:{name}}}"


def policy_key(keys: Keys) -> str:
    return f"{keys.ns}:{{rd-policy}}"


def topic_keys(keys: Keys, topic_id: str) -> tuple[str, str]:
    """The topic's configuration key and its value key (one slot)."""
    base = f"{keys.ns}:{{t:{topic_id}}}:"
    return base + "c", base + "v"


def campaign_keys(keys: Keys, campaign_id: str) -> tuple[str, str]:
    """The campaign's key and its jobs' hash (one slot)."""
    base = f"{keys.ns}:{{fw:{campaign_id}}}:"
    return base + "c", base + "j"


def between(key: str, prefix: str, suffix: str) -> str | None:
    """What a key of ``prefix``...``suffix`` names, else None."""
    if key.startswith(prefix) and key.endswith(suffix) and len(key) >= len(prefix) + len(
            suffix):
        return key[len(prefix):len(key) - len(suffix)]
    return None


async def scan_keys(client: Any, pattern: str) -> list[str]:
    """Every key matching ``pattern`` (one SCAN over every primary of a Cluster)."""
    out: list[str] = []
    async for raw in client.scan_iter(match=pattern, count=1000):
        try:
            out.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        except UnicodeDecodeError:
            continue
    return out


def glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def read_all(client: Any, names: list[str], command: str) -> list[tuple[str, Any]]:
    """``command`` (GET, HGETALL) on every key, pipelined in chunks; empty ones left out."""
    out: list[tuple[str, Any]] = []
    for start in range(0, len(names), LOAD_CHUNK):
        chunk = names[start:start + LOAD_CHUNK]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.execute_command(command, name)
        for name, value in zip(chunk, await pipe.execute(), strict=True):
            if value:
                out.append((name, value))
    return out


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: Any) -> bytes | None:
    return None if text is None else base64.b64decode(str(text), validate=True)


def redis_stores_of(stores: object) -> Any:
    """``stores`` when they are :class:`~aiolwm2m.store.redis_stores.RedisStores`, else
    None (without importing redis-py for a server that does not use it)."""
    module = sys.modules.get("aiolwm2m.store.redis_stores")
    if module is not None and isinstance(stores, module.RedisStores):
        return stores
    return None
