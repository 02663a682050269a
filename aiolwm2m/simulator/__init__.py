"""Many simulated LwM2M devices in one process (see :mod:`.fleet`)."""

from .device import ServerTarget, SimDevice
from .fleet import Fleet, FleetConfig
from .profile import FleetProfile
from .runner import run_fleet

__all__ = ["Fleet", "FleetConfig", "FleetProfile", "ServerTarget", "SimDevice", "run_fleet"]
