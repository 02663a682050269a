"""The standard objects with their behaviour: 0-7 and the IPSO Temperature (3303)."""

from .access_control import AccessControlInstance
from .connectivity import ConnectivityMonitoringInstance, ConnectivityStatisticsInstance
from .device import DeviceInstance
from .firmware import FirmwareUpdateInstance
from .location import LocationInstance
from .security import SecurityInstance
from .server import ServerInstance
from .temperature import TemperatureInstance

__all__ = [
    "AccessControlInstance",
    "ConnectivityMonitoringInstance",
    "ConnectivityStatisticsInstance",
    "DeviceInstance",
    "FirmwareUpdateInstance",
    "LocationInstance",
    "SecurityInstance",
    "ServerInstance",
    "TemperatureInstance",
]
