"""Which values store a server uses (``ServerConfig.values_store``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .memory import MemoryValueStore
from .sqlite import SQLiteValueStore
from .store import Retention, ValueStore

#: ``auto`` keeps values in SQLite next to an SQLite registration store, and in memory
#: otherwise (beside Redis stores the server opens ``history.store_redis`` itself).
VALUE_STORES = ("auto", "sqlite", "memory", "off")


async def open_value_store(kind: str, registration_store: str, data_dir: Path,
                           retention: Retention, clock: Callable[[], float] = time.time
                           ) -> ValueStore | None:
    if kind not in VALUE_STORES:
        raise ValueError(f"values_store must be one of {', '.join(VALUE_STORES)}, not "
                         f"{kind!r}")
    if kind == "auto":
        kind = "sqlite" if registration_store == "sqlite" else "memory"
    if kind == "off":
        return None
    store: ValueStore
    if kind == "sqlite":
        store = await SQLiteValueStore.open(data_dir, retention=retention, clock=clock)
    else:
        store = MemoryValueStore(retention, clock)
    store.start()
    return store
