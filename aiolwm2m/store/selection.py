"""Which stores a ``store`` setting names: ``sqlite`` (the default, in the data directory),
``memory`` (nothing kept), or a Redis URL (``redis://HOST:PORT``, ``redis+cluster://HOST:PORT``,
see :mod:`aiolwm2m.store.redis_connect`). redis-py is imported only when a Redis URL is used.
"""

from __future__ import annotations

from pathlib import Path

from .bootstrap_store import BootstrapStores
from .interfaces import Stores, StoreWriter
from .redis_connect import RedisTarget, StoreOpenError, is_redis_url

__all__ = ["StoreOpenError", "check_store", "describe_store", "open_bootstrap_stores",
           "open_stores", "store_writer"]


def check_store(store: str) -> str:
    """The setting if it names stores; ValueError saying what is wrong otherwise."""
    if store in ("sqlite", "memory"):
        return store
    if "://" in store:
        RedisTarget.parse(store)
        return store
    raise ValueError(f"store must be sqlite, memory, redis://HOST:PORT or "
                     f"redis+cluster://HOST:PORT, not {store[:40]!r}")


def describe_store(store: str, data_dir: Path) -> str:
    """For banners: where things are kept (never a Redis password)."""
    if store == "sqlite":
        return str(data_dir / "aiolwm2m.sqlite3")
    if is_redis_url(store):
        return RedisTarget.parse(store).describe()
    return "memory (not kept)"


async def open_stores(store: str, database: Path, *, synchronous: str = "FULL",
                      node: str | None = None, lease_grace: float = 60.0) -> Stores:
    """The LwM2M server's stores (with ``node``: those of one node of several, which must
    be Redis ones). Raises StoreOpenError when Redis cannot be used."""
    if node is not None and not is_redis_url(store):
        raise StoreOpenError("several nodes (--node-id) share a Redis store: use --store "
                             "redis://HOST:PORT or redis+cluster://HOST:PORT")
    if is_redis_url(store):
        from .redis_keys import check_node_id
        from .redis_stores import RedisStores

        if node is not None:
            try:
                check_node_id(node)
            except ValueError as e:
                raise StoreOpenError(str(e)) from None
        return await RedisStores.open(_target(store), node=node, lease_grace=lease_grace)
    if store == "sqlite":
        from .sqlite import SQLiteStores

        return await SQLiteStores.open(database, synchronous=synchronous)
    from .memory import MemoryStores

    return MemoryStores()


async def open_bootstrap_stores(store: str, database: Path) -> BootstrapStores:
    """The bootstrap server's stores, beside the LwM2M server's."""
    if is_redis_url(store):
        from .redis_bootstrap import RedisBootstrapStores

        return await RedisBootstrapStores.open(_target(store))
    if store == "sqlite":
        from .bootstrap_sqlite import SQLiteBootstrapStores

        return await SQLiteBootstrapStores.open(database)
    from .bootstrap_memory import MemoryBootstrapStores

    return MemoryBootstrapStores()


def store_writer(stores: object) -> StoreWriter | None:
    """The writer whose state says whether the stores take writes (None: they always do)."""
    writer = getattr(stores, "writer", None)
    return writer if isinstance(writer, StoreWriter) else None


def _target(store: str) -> RedisTarget:
    try:
        return RedisTarget.parse(store)
    except ValueError as e:
        raise StoreOpenError(f"bad Redis store URL: {e}") from None
