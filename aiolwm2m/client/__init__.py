"""The LwM2M 1.1 client library.

The normal provisioning path is a Bootstrap-Server (``ClientConfig(bootstrap_uri=...)``);
``ClientConfig.development(endpoint, server_uri)`` configures a server directly, for
development only (factory bootstrap, excluded by OSR-002). Servers are reached over
coap://, coaps:// (DTLS: PSK, RPK, X.509), coap+tcp:// or coaps+tcp:// (binding T), as each
account's Security instance says.
"""

from .account_security import AccountSecurity, SecurityModeError
from .backoff import Backoff, RetryPolicy
from .client import LwM2MClient, NotRegistered, SendMuted
from .clock import Clock, LoopClock, ManualClock
from .config import ClientConfig
from .events import (
    Awake,
    BootstrapFailed,
    Bootstrapped,
    BootstrapStarted,
    ClientEvent,
    Deregistered,
    Disabled,
    NotificationSent,
    Registered,
    RegistrationFailed,
    Sleeping,
    Updated,
)
from .instance import Instance, execute, resource
from .objects import (
    AccessControlInstance,
    ConnectivityMonitoringInstance,
    ConnectivityStatisticsInstance,
    DeviceInstance,
    FirmwareUpdateInstance,
    LocationInstance,
    SecurityInstance,
    ServerInstance,
    TemperatureInstance,
)
from .tree import ObjectTree

__all__ = [
    "AccessControlInstance",
    "AccountSecurity",
    "Awake",
    "Backoff",
    "BootstrapFailed",
    "BootstrapStarted",
    "Bootstrapped",
    "ClientConfig",
    "ClientEvent",
    "Clock",
    "ConnectivityMonitoringInstance",
    "ConnectivityStatisticsInstance",
    "Deregistered",
    "DeviceInstance",
    "Disabled",
    "FirmwareUpdateInstance",
    "Instance",
    "LocationInstance",
    "LoopClock",
    "LwM2MClient",
    "ManualClock",
    "NotRegistered",
    "NotificationSent",
    "ObjectTree",
    "Registered",
    "RegistrationFailed",
    "RetryPolicy",
    "SecurityInstance",
    "SecurityModeError",
    "SendMuted",
    "ServerInstance",
    "Sleeping",
    "TemperatureInstance",
    "Updated",
    "execute",
    "resource",
]
