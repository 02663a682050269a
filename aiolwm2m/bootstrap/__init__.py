"""The LwM2M Bootstrap-Server: per-endpoint configurations and bootstrap sessions, over
coap://, coaps://, coap+tcp:// and coaps+tcp://, and the credentials it provisions."""

from .configuration import (
    DEFAULT_ENDPOINT,
    AclConfig,
    ConfigurationConflict,
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
    BootstrapRefused,
    RequestAnswered,
    RequestSent,
    SessionFailed,
    SessionFinished,
    SessionStarted,
)
from .refusals import RefusalSink
from .server import BootstrapCredentialLookup, BootstrapServer, BootstrapServerConfig
from .server_accounts import CredentialsChange, provisioned_account
from .session import BootstrapSession, plan

__all__ = [
    "DEFAULT_ENDPOINT",
    "AccountCredentials",
    "AclConfig",
    "BootstrapCredentialLookup",
    "BootstrapCredentials",
    "BootstrapEvent",
    "BootstrapRefused",
    "BootstrapServer",
    "BootstrapServerConfig",
    "BootstrapSession",
    "ConfigurationConflict",
    "ConfigurationError",
    "CredentialsChange",
    "CredentialsError",
    "EndpointConfig",
    "InstanceWrite",
    "RefusalSink",
    "RequestAnswered",
    "RequestSent",
    "SecurityConfig",
    "ServerAccountConfig",
    "SessionFailed",
    "SessionFinished",
    "SessionStarted",
    "load_config_file",
    "plan",
    "provisioned_account",
]
