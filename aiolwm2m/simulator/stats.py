"""Fleet counters, and the process figures (RSS, CPU) the progress display shows."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from typing import Any

from .device import STATE_NAMES

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class FleetStats:
    count: int
    states: list[int] = field(default_factory=lambda: [0] * len(STATE_NAMES))
    sockets: int = 0
    socket_errors: int = 0
    registrations: int = 0
    bootstrapped: int = 0
    failures: int = 0
    updates: int = 0
    update_failures: int = 0
    sends: int = 0
    send_failures: int = 0
    notifications: int = 0
    requests: int = 0
    materialised: int = 0
    deregistrations: int = 0
    #: Firmware blocks received and updates installed (each followed by a reboot).
    firmware_blocks: int = 0
    firmware_updates: int = 0
    started_at: float = 0.0
    all_started_at: float | None = None
    last_registered_at: float = 0.0
    all_registered_at: float | None = None
    last_failure: str = ""

    def __post_init__(self) -> None:
        self.states[0] = 0

    def moved(self, old: int, new: int) -> None:
        if old != 0:
            self.states[old] -= 1
        self.states[new] += 1

    @property
    def registered(self) -> int:
        return self.states[STATE_NAMES.index("registered")]

    @property
    def retrying(self) -> int:
        return self.states[STATE_NAMES.index("retrying")]

    @property
    def bootstrapping(self) -> int:
        return self.states[STATE_NAMES.index("bootstrapping")]

    @property
    def registering(self) -> int:
        return self.states[STATE_NAMES.index("registering")]

    def snapshot(self, now: float) -> dict[str, Any]:
        rss = rss_bytes()
        devices = max(1, self.sockets)
        return {
            "devices": self.count,
            "started": self.sockets,
            "bootstrapping": self.bootstrapping,
            "registering": self.registering,
            "registered": self.registered,
            "retrying": self.retrying,
            "failed_attempts": self.failures,
            "registrations": self.registrations,
            "bootstrapped": self.bootstrapped,
            "updates": self.updates,
            "update_failures": self.update_failures,
            "sends": self.sends,
            "send_failures": self.send_failures,
            "notifications": self.notifications,
            "requests_served": self.requests,
            "deregistrations": self.deregistrations,
            "elapsed_s": round(now - self.started_at, 2),
            "rss_mb": round(rss / 2**20, 1),
            "rss_per_device_kb": round(rss / devices / 1024, 2),
            "cpu_s": round(cpu_seconds(), 2),
            "last_failure": self.last_failure,
        }
