"""Broker configuration."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.coap.uri import UriError, parse_uri
from aiolwm2m.store.redis_connect import is_redis_url

from .limits import DEFAULT_LIMITS, BrokerLimits


@dataclass
class BrokerConfig:
    #: Addresses to serve CoAP on, one UDP socket each ("::" takes IPv4 and IPv6).
    hosts: tuple[str, ...] = ("::",)
    port: int = 5683
    #: "sqlite" keeps topics and last values in ``data_dir``; "memory" keeps nothing; a
    #: Redis URL (``redis://HOST:PORT``, ``redis+cluster://...``) keeps them in Redis.
    store: str = "sqlite"
    data_dir: Path = field(default_factory=lambda: Path("aiolwm2m-data"))
    #: Longest a publication waits before it is written to SQLite (values are written
    #: behind, newest per topic; configuration changes are durable before the reply).
    flush_interval: float = 1.0
    limits: BrokerLimits = DEFAULT_LIMITS
    #: Resource Directory to announce the broker to: ``coap://host[:port]`` (its
    #: registration resource is looked up there), a registration resource URI with a path,
    #: or a multicast address (``coap://224.0.1.187``, ``coap://[ff02::fd]``) to discover
    #: one. None: no announcement.
    rd: str | None = None
    #: The endpoint name to register as (RFC 9176 ``ep``); default ``broker-<port>``.
    rd_endpoint: str | None = None
    #: Registration lifetime (``lt``); it is refreshed before it runs out.
    rd_lifetime: int = 3600
    #: IPv4 address of the interface that multicast discovery goes out of (None: the
    #: system's choice).
    rd_multicast_interface: str | None = None
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    #: Wall clock: publication times and expiration dates (seconds since the epoch).
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.store not in ("sqlite", "memory") and not is_redis_url(self.store):
            raise ValueError(f"store must be 'sqlite', 'memory' or a Redis URL, not "
                             f"{self.store[:40]!r}")
        if not self.hosts:
            raise ValueError("the broker needs at least one address to serve on")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if not 1 <= self.rd_lifetime <= (1 << 32) - 1:
            raise ValueError("rd_lifetime must be 1..4294967295")
        if self.rd:
            try:
                uri = parse_uri(self.rd)
            except UriError as e:
                raise ValueError(f"rd: {e}") from None
            if uri.scheme != "coap":
                raise ValueError("rd: the broker announces itself over coap:// only")

    @property
    def database(self) -> Path:
        return self.data_dir / "pubsub.sqlite3"
