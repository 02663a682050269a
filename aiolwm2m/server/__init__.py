"""The LwM2M server: registration, device management, information reporting, queue mode."""

from .config import ServerConfig
from .errors import DeviceSleeping, NotRegistered, ServerError
from .server import LwM2MServer

__all__ = ["DeviceSleeping", "LwM2MServer", "NotRegistered", "ServerConfig", "ServerError"]
