"""The LwM2M Bootstrap-Server: per-endpoint configurations and bootstrap sessions."""

from .configuration import (
    DEFAULT_ENDPOINT,
    AclConfig,
    ConfigurationError,
    EndpointConfig,
    InstanceWrite,
    SecurityConfig,
    ServerAccountConfig,
    load_config_file,
)
from .events import (
    BootstrapEvent,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from .server import BootstrapServer, BootstrapServerConfig
from .session import BootstrapSession, plan

__all__ = [
    "DEFAULT_ENDPOINT",
    "AclConfig",
    "BootstrapEvent",
    "BootstrapServer",
    "BootstrapServerConfig",
    "BootstrapSession",
    "ConfigurationError",
    "EndpointConfig",
    "InstanceWrite",
    "RequestAnswered",
    "RequestSent",
    "SecurityConfig",
    "ServerAccountConfig",
    "SessionFailed",
    "SessionFinished",
    "SessionStarted",
    "load_config_file",
    "plan",
]
