"""Which Redis a store URL names, and a client for it that is known to answer.

``redis://[[USER]:PASSWORD@]HOST:PORT[/DB][?namespace=NAME]`` is one Redis (or a primary
behind a proxy); ``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[?namespace=NAME]`` is a Redis
Cluster, HOST:PORT being any of its nodes (the others are discovered). What is printed or
logged of a target never includes the password.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .redis_keys import DEFAULT_NAMESPACE, check_namespace

SCHEMES = ("redis", "redis+cluster")
#: Seconds a command may take before Redis counts as unavailable, and to connect.
COMMAND_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0


class StoreOpenError(Exception):
    """The store named in the configuration cannot be used (a one-line reason)."""


def is_redis_url(store: str) -> bool:
    return store.split("://", 1)[0] in SCHEMES and "://" in store


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    cluster: bool = False
    db: int = 0
    username: str | None = None
    password: str | None = None
    namespace: str = DEFAULT_NAMESPACE

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        """Raises ValueError saying what is wrong (never echoing a password)."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError("a Redis store URL starts with redis:// or redis+cluster://")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the Redis port must be a number in 0..65535") from None
        if not parts.hostname or port is None:
            raise ValueError(f"a Redis store URL names HOST:PORT ({parts.scheme}://HOST:PORT)")
        path = parts.path.strip("/")
        db = 0
        if path:
            if not path.isdigit():
                raise ValueError(f"the Redis database must be a number, not {path!r}")
            db = int(path)
        cluster = parts.scheme == "redis+cluster"
        if cluster and db:
            raise ValueError("a Redis Cluster has database 0 only")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - {"namespace"}
        if unknown:
            raise ValueError(f"unknown Redis store option(s): {', '.join(sorted(unknown))}")
        namespace = query.get("namespace", [DEFAULT_NAMESPACE])[-1]
        return cls(host=parts.hostname, port=port, cluster=cluster, db=db,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password is not None else None,
                   namespace=check_namespace(namespace))

    def describe(self) -> str:
        """For banners and errors: no credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "redis+cluster" if self.cluster else "redis"
        db = f"/{self.db}" if self.db else ""
        ns = f" (namespace {self.namespace})" if self.namespace != DEFAULT_NAMESPACE else ""
        return f"{scheme}://{host}:{self.port}{db}{ns}"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


async def connect(target: RedisTarget) -> Any:
    """A client for ``target`` that answered a PING (and, for a Cluster, has its slot map).
    Raises StoreOpenError when it is unreachable, refuses our credentials, or is not what
    the URL says (a Cluster node named with redis://)."""
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisClusterException, RedisError

    common: dict[str, Any] = dict(
        username=target.username, password=target.password,
        socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
        # One immediate retry covers a pooled connection Redis closed (it restarted); the
        # writer handles longer outages itself.
        retry=Retry(NoBackoff(), 1))
    client: Any = (
        RedisCluster(host=target.host, port=target.port, **common) if target.cluster else
        Redis(host=target.host, port=target.port, db=target.db, **common))
    try:
        if target.cluster:
            await client.initialize()
        await client.ping()
        if not target.cluster and (await client.info("cluster")).get("cluster_enabled"):
            raise StoreOpenError(f"Redis at {target.address} is a Redis Cluster node: "
                                 f"use redis+cluster://{target.address}")
    except BaseException as e:
        with contextlib.suppress(Exception):
            await client.aclose()
        if isinstance(e, RedisError | RedisClusterException | OSError):
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreOpenError(f"cannot reach Redis at {target.address}: {reason}") from None
        raise
    return client
