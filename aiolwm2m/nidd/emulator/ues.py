"""The UEs the SCEF emulator knows: where they are, whether they can be reached, and how the
network treats them (latency, packet size, rate control)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, fields, replace
from typing import Any

from aiolwm2m.nidd.t8_fields import T8FormatError

#: Seconds in each uplink time unit of TS 24.008 clause 10.5.6.3.2 (0: unrestricted).
TIME_UNITS = {1: 60.0, 2: 3600.0, 3: 86400.0, 4: 7 * 86400.0}


@dataclass(frozen=True, slots=True)
class UeBehaviour:
    """How the emulated network treats one UE. Changed at run time through the emulator's
    control API (``PATCH /emulator/v1/ues/{id}``) or in Python."""

    #: One-way delay of each packet, both directions (seconds).
    latency: float = 0.0
    #: False emulates reachability loss: MT data is buffered as
    #: BUFFERING_TEMPORARILY_NOT_REACHABLE and MO data is lost.
    reachable: bool = True
    #: The Maximum Packet Size the SCEF gives the UE and the SCS/AS (bits).
    maximumPacketSize: int = 12_000
    #: APN rate control: uplink packets per ``uplinkTimeUnit`` (0: none). Beyond, MO data
    #: is refused (the UE gets a REJECT).
    apnRateControl: int = 0
    uplinkTimeUnit: int = 1
    #: MT packets the SCEF takes per ``downlinkWindow`` seconds before answering 429
    #: (0: no limit): the downlink side of rate control.
    downlinkRate: int = 0
    downlinkWindow: float = 60.0

    def changed(self, values: dict[str, Any]) -> UeBehaviour:
        """A copy with ``values`` applied; raises T8FormatError naming a bad one."""
        known = {f.name: f for f in fields(self)}
        updates: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                raise T8FormatError(f"/{name}", "not a UE behaviour")
            current = getattr(self, name)
            if isinstance(current, bool):
                ok = isinstance(value, bool)
            elif isinstance(current, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and (
                    0 <= value <= 86400)
            if not ok:
                raise T8FormatError(f"/{name}", f"bad value {value!r}")
            updates[name] = value
        if updates.get("uplinkTimeUnit", self.uplinkTimeUnit) not in (0, *TIME_UNITS):
            raise T8FormatError("/uplinkTimeUnit", "is 0..4")
        if updates.get("maximumPacketSize", self.maximumPacketSize) < 8:
            raise T8FormatError("/maximumPacketSize", "must be at least 8 bits")
        return replace(self, **updates)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class WindowCounter:
    """Packets counted over a fixed window (the way rate control counts per time unit)."""

    __slots__ = ("count", "started")

    def __init__(self) -> None:
        self.started = 0.0
        self.count = 0

    def take(self, limit: int, window: float, now: float) -> float:
        """Count one packet; 0.0 when it fits the limit, else the seconds until the window
        ends (the packet is refused and not counted)."""
        if limit <= 0 or window <= 0:
            return 0.0
        if now - self.started >= window:
            self.started = now
            self.count = 0
        if self.count >= limit:
            return max(0.001, self.started + window - now)
        self.count += 1
        return 0.0


@dataclass(eq=False)
class EmulatedUe:
    ident: str
    behaviour: UeBehaviour
    address: Any = None
    #: The PDN connection is up (ATTACH seen, no DETACH since): MT data goes out at once.
    attached: bool = False
    groups: tuple[str, ...] = ()
    #: Deliveries waiting for the UE to attach or become reachable, oldest first.
    buffered: collections.deque[str] = field(default_factory=collections.deque)
    uplink: WindowCounter = field(default_factory=WindowCounter)
    downlink: WindowCounter = field(default_factory=WindowCounter)
    mo_packets: int = 0
    mt_packets: int = 0

    @property
    def deliverable(self) -> bool:
        return self.attached and self.behaviour.reachable and self.address is not None

    def to_json(self) -> dict[str, Any]:
        return {"ue": self.ident, "attached": self.attached, "groups": list(self.groups),
                "buffered": len(self.buffered), "moPackets": self.mo_packets,
                "mtPackets": self.mt_packets, "behaviour": self.behaviour.to_json()}
