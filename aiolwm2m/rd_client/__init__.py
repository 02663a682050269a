"""The registering side of a CoRE Resource Directory (RFC 9176), for any CoAP node.

:class:`RdRegisterer` registers an endpoint (name, sector, endpoint types, base, lifetime,
links, extra attributes) with an RD over coap://, coaps://, coap+tcp:// or coaps+tcp://,
with RD credentials of its own (PSK, RPK or X.509), and keeps the registration alive;
:func:`rd_lookup`, :func:`rd_remove` and :func:`rd_remove_endpoint` are single requests.
``aiolwm2m rd`` is the same on the command line.
"""

from .connection import RdConnection
from .events import (
    RdEvent,
    RdRegistered,
    RdRegistrationFailed,
    RdRegistrationLost,
    RdUnregistered,
    RdUpdated,
)
from .messages import DEFAULT_LIFETIME, RdProtocolError, RdRegistration, RdRejected
from .oneshot import rd_lookup, rd_remove, rd_remove_endpoint
from .registerer import DEFAULT_RETRY, RdRegisterer

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_RETRY",
    "RdConnection",
    "RdEvent",
    "RdProtocolError",
    "RdRegistered",
    "RdRegisterer",
    "RdRegistration",
    "RdRegistrationFailed",
    "RdRegistrationLost",
    "RdRejected",
    "RdUnregistered",
    "RdUpdated",
    "rd_lookup",
    "rd_remove",
    "rd_remove_endpoint",
]
