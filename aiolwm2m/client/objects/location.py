"""Object 6, Location."""

from __future__ import annotations

import time

from ..instance import Instance, resource


class LocationInstance(Instance, object_id=6):
    latitude = resource(0, default=0.0)
    longitude = resource(1, default=0.0)
    altitude = resource(2)
    radius = resource(3)
    velocity = resource(4)
    timestamp = resource(5, default=0)
    speed = resource(6)

    def move_to(self, latitude: float, longitude: float, altitude: float | None = None,
                *, at: float | None = None) -> None:
        """Set a new fix; observers of the instance get one notification-worthy change."""
        control = self.control
        when = at if at is not None else (control.wall_time() if control else time.time())
        self.store(0, latitude)
        self.store(1, longitude)
        if altitude is not None:
            self.store(2, altitude)
        self.store(5, int(when))
        for rid in (0, 1, 2, 5):
            self.changed(rid)
