"""The LwM2M Gateway (OMA Gateway TS 1.1, Object 25) on both sides.

Client side: :class:`LwM2MGateway` registers with an LwM2M server like any client and fronts
end devices under their prefixes (``/dev1/3303/0/5700``): in-process object trees
(:class:`TreeEndDevice`), plain CoAP nodes (:class:`CoapNodeDevice`) and nodes that publish
to the pub/sub broker the gateway runs (:class:`BrokerNodes`).

Server side (used by :class:`aiolwm2m.server.LwM2MServer`): the end devices a gateway
announces in ``/25`` become records under its registration
(:mod:`aiolwm2m.gateway.directory`, :mod:`aiolwm2m.gateway.end_device_sync`), addressed as
:class:`EndDeviceName` wherever an endpoint name goes.

Names are loaded on first use: the server imports the server-side modules without pulling
in the client library and the broker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker_nodes import BrokerNodes
    from .coap_node import CoapNodeDevice
    from .end_device import EndDevice, TreeEndDevice
    from .gateway import LwM2MGateway
    from .names import EndDeviceName

_LAZY = {
    "BrokerNodes": ".broker_nodes",
    "CoapNodeDevice": ".coap_node",
    "EndDevice": ".end_device",
    "EndDeviceName": ".names",
    "LwM2MGateway": ".gateway",
    "TreeEndDevice": ".end_device",
}

__all__ = ["BrokerNodes", "CoapNodeDevice", "EndDevice", "EndDeviceName", "LwM2MGateway",
           "TreeEndDevice"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
