"""IPSO object 3303, Temperature, keeping its min/max measured values."""

from __future__ import annotations

from ..instance import Instance, execute, resource


class TemperatureInstance(Instance, object_id=3303):
    sensor_value = resource(5700, default=20.0)
    min_measured = resource(5601)
    max_measured = resource(5602)
    min_range = resource(5603, default=-40.0)
    max_range = resource(5604, default=85.0)
    units = resource(5701, default="Cel")
    application_type = resource(5750)

    def measure(self, value: float) -> None:
        """A new reading: updates 5700 and the measured extremes."""
        low, high = self.get(5601), self.get(5602)
        if low is None or value < low:
            self.set(5601, value)
        if high is None or value > high:
            self.set(5602, value)
        self.set(5700, value)

    @execute(5605)
    def reset_min_max(self, arguments: str) -> None:
        self.set(5601, None)
        self.set(5602, None)
