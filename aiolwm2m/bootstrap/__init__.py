"""The LwM2M Bootstrap-Server: per-endpoint configurations and bootstrap sessions, over
coap://, coaps://, coap+tcp:// and coaps+tcp://, and the credentials it provisions."""

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
from .credentials import AccountCredentials, BootstrapCredentials, CredentialsError
from .events import (
    BootstrapEvent,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from .server import BootstrapCredentialLookup, BootstrapServer, BootstrapServerConfig
from .session import BootstrapSession, plan

__all__ = [
    "DEFAULT_ENDPOINT",
    "AccountCredentials",
    "AclConfig",
    "BootstrapCredentialLookup",
    "BootstrapCredentials",
    "BootstrapEvent",
    "BootstrapServer",
    "BootstrapServerConfig",
    "BootstrapSession",
    "ConfigurationError",
    "CredentialsError",
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
