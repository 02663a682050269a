"""How much a CoAP-over-TCP/TLS listener lets its peers hold, and for how long.

Every accepted connection costs a file descriptor, kernel buffers and (for TLS) a session, so
a peer that opens connections and then says nothing could otherwise exhaust the process: new
clients and the REST API stop when the descriptors run out. :class:`StreamLimits` bounds
that: connections that carry no registration are closed once silent for
``unbound_idle_timeout``, a TLS handshake must finish within ``handshake_timeout``, and a
listener holds at most ``max_connections`` connections, ``max_connections_per_address``
from any one address. :class:`ConnectionQuota` does the counting. How long a started frame
may take is a connection parameter (``TcpParameters.frame_timeout``).
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Limits of the connections one TCP/TLS endpoint accepts (not those it dials)."""

    #: A connection the server does not know as a registration's (one that sent only a
    #: CSM, or a bootstrap session that ended) is closed after this long without receiving
    #: anything. Registered devices may stay silent for their whole lifetime: the endpoint's
    #: ``keep_idle`` predicate exempts them. A client registers right after it connects, so
    #: a minute is plenty, and it still lets a device pause between its requests.
    unbound_idle_timeout: float | None = 60.0
    #: Accepted TLS connections (coaps+tcp) whose handshake is not finished within this are
    #: dropped; a PSK handshake needs two round trips, an X.509 one a few kilobytes more.
    handshake_timeout: float | None = 15.0
    #: Connections one listener holds at once (None: no cap); beyond it a new connection is
    #: closed as soon as it is accepted. :meth:`fit_descriptors` lowers it to what the
    #: process's descriptor limit allows.
    max_connections: int | None = 10_000
    #: Connections from one IP address at once. Devices behind a carrier-grade NAT share an
    #: address: raise this for such fleets.
    max_connections_per_address: int | None = 256
    #: Refused connections and accept errors are logged at most a few times per interval.
    log_interval: float = 10.0

    def __post_init__(self) -> None:
        for name in ("unbound_idle_timeout", "handshake_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None for no limit)")
        for name in ("max_connections", "max_connections_per_address"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no cap)")

    def fit_descriptors(self, listeners: int, reserve: int = 256,
                        soft_limit: int | None = None) -> StreamLimits:
        """These limits with ``max_connections`` lowered so that ``listeners`` listeners at
        their cap still leave ``reserve`` descriptors (HTTP, database, UDP sockets, logs)
        below the soft RLIMIT_NOFILE."""
        if soft_limit is None:
            soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit == resource.RLIM_INFINITY or listeners < 1:
            return self
        share = max(1, (soft_limit - reserve) // listeners)
        if self.max_connections is not None and self.max_connections <= share:
            return self
        return replace(self, max_connections=share)


DEFAULT_STREAM_LIMITS = StreamLimits()


class ConnectionQuota:
    """Counts one listener's connections, in total and per address."""

    __slots__ = ("by_address", "limits", "total")

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.total = 0
        self.by_address: dict[str, int] = {}

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``; or, when a cap is reached, count nothing
        and return the refusal reason."""
        limits = self.limits
        if limits.max_connections is not None and self.total >= limits.max_connections:
            return "tcp-connection-limit"
        held = self.by_address.get(host, 0)
        cap = limits.max_connections_per_address
        if cap is not None and held >= cap:
            return "tcp-address-limit"
        self.total += 1
        self.by_address[host] = held + 1
        return None

    def release(self, host: str) -> None:
        self.total -= 1
        held = self.by_address.get(host, 0)
        if held <= 1:
            self.by_address.pop(host, None)
        else:
            self.by_address[host] = held - 1
