"""How large device groups may grow and how hard a group operation may push
(``ServerConfig.group_limits``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupLimits:
    #: Members one group may resolve to (static and dynamic together; 4.00/400 beyond a
    #: static list of more, and a dynamic filter stops there): bounds a run's memory.
    max_members: int = 100_000
    #: Groups in all: each is one row and is listed in full by the REST API.
    max_groups: int = 10_000
    #: Requests a group operation has in flight at once, unless it asks for another
    #: number (at most ``max_concurrency``): a fan-out to 10,000 devices must not open
    #: 10,000 exchanges at once.
    default_concurrency: int = 64
    max_concurrency: int = 1024
    #: Group operations running at once (409 beyond), and finished ones kept for their
    #: results (the oldest goes first).
    max_active_runs: int = 16
    kept_runs: int = 32


DEFAULT_GROUP_LIMITS = GroupLimits()
