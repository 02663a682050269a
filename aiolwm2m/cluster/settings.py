"""What an operator may tune about several nodes (``ServerConfig.cluster``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterSettings:
    #: A node counts as dead this long after its last heartbeat (it beats three times per
    #: period): its leases stop counting, its devices go to the node they next talk to.
    node_ttl: float = 10.0
    #: How long a lease outlives its registration's lifetime (clock skew, late Updates).
    lease_grace: float = 60.0
    #: How long a node waits for the owner to answer a routed REST request, on top of the
    #: request's own ``timeout`` (the device's CoAP exchange may take 93 s by default).
    route_timeout: float = 100.0
    #: How often each node looks for registrations whose owner died and expires them.
    sweep_interval: float = 30.0
    #: Entries a node's inbox and event streams keep at most (older ones are trimmed).
    stream_max_len: int = 10_000


DEFAULT_CLUSTER_SETTINGS = ClusterSettings()
