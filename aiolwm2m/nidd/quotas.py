"""Rate and byte quotas per device (LPW-008/009): token buckets, each direction, packets and
bytes.

A quota of N per window is a bucket of N tokens refilled at N per window, continuously: a
device may spend its whole allowance at once and then earns it back evenly, never more than
N in any window-long stretch after a full bucket. Uplink data beyond the quota is dropped
(and counted); downlink data waits for its tokens, within its time to live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .t8_fields import T8FormatError, integer

_count = integer(1, 2 ** 53)
_window = integer(1, 366 * 86400)
UPLINK, DOWNLINK = "uplink", "downlink"
PACKETS, BYTES = "packets", "bytes"


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """Allowances per ``window`` seconds; None leaves that one unlimited."""

    uplink_packets: int | None = None
    uplink_bytes: int | None = None
    downlink_packets: int | None = None
    downlink_bytes: int | None = None
    window: int = 86400

    def to_json(self) -> dict[str, Any]:
        return {"uplink_packets": self.uplink_packets, "uplink_bytes": self.uplink_bytes,
                "downlink_packets": self.downlink_packets,
                "downlink_bytes": self.downlink_bytes, "window": self.window}

    @classmethod
    def from_json(cls, value: Any, where: str = "/quota") -> QuotaSpec:
        if not isinstance(value, dict):
            raise T8FormatError(where, "expected an object")
        unknown = set(value) - {"uplink_packets", "uplink_bytes", "downlink_packets",
                                "downlink_bytes", "window"}
        if unknown:
            raise T8FormatError(f"{where}/{sorted(unknown)[0]}", "not a quota setting")
        kwargs: dict[str, Any] = {}
        for name in ("uplink_packets", "uplink_bytes", "downlink_packets", "downlink_bytes"):
            if value.get(name) is not None:
                kwargs[name] = _count(value[name], f"{where}/{name}")
        if value.get("window") is not None:
            kwargs["window"] = _window(value["window"], f"{where}/window")
        return cls(**kwargs)


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: int, window: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / window
        self.tokens = float(capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are there (0.0: now). An amount above the
        capacity can never be paid: infinity."""
        if amount > self.capacity:
            return float("inf")
        self._refill(now)
        missing = amount - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.tokens -= amount

    def remaining(self, now: float) -> int:
        self._refill(now)
        return max(0, int(self.tokens))


class DeviceQuota:
    """The buckets of one device, made from its QuotaSpec."""

    __slots__ = ("buckets", "spec")

    def __init__(self, spec: QuotaSpec, now: float) -> None:
        self.spec = spec
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        for (direction, kind), limit in (((UPLINK, PACKETS), spec.uplink_packets),
                                         ((UPLINK, BYTES), spec.uplink_bytes),
                                         ((DOWNLINK, PACKETS), spec.downlink_packets),
                                         ((DOWNLINK, BYTES), spec.downlink_bytes)):
            if limit is not None:
                self.buckets[(direction, kind)] = TokenBucket(limit, spec.window, now)

    def wait(self, direction: str, size: int, now: float) -> tuple[float, str | None]:
        """(seconds until a packet of ``size`` bytes fits, the limit that holds it back)."""
        worst, which = 0.0, None
        for kind, amount in ((PACKETS, 1), (BYTES, size)):
            bucket = self.buckets.get((direction, kind))
            if bucket is not None:
                w = bucket.wait(amount, now)
                if w > worst:
                    worst, which = w, kind
        return worst, which

    def take(self, direction: str, size: int, now: float) -> None:
        for kind, amount in ((PACKETS, 1), (BYTES, size)):
            bucket = self.buckets.get((direction, kind))
            if bucket is not None:
                bucket.take(amount, now)

    def remaining(self, now: float) -> dict[str, int]:
        return {f"{d}_{k}": b.remaining(now) for (d, k), b in self.buckets.items()}
