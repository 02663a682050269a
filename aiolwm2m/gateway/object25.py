"""Object 25 (LwM2M Gateway, version 2.0) on the gateway: one instance per end device."""

from __future__ import annotations

from aiolwm2m.client.instance import Instance, resource

__all__ = ["GATEWAY_OBJECT", "GatewayInstance"]

GATEWAY_OBJECT = 25


class GatewayInstance(Instance, object_id=GATEWAY_OBJECT, version="2.0"):
    """``/25/x``: the end device's id (0), the prefix its objects are reached under (1)
    and those objects as a CoRE link list (3, the Register payload's form, no prefix)."""

    device_id = resource(0)
    prefix = resource(1)
    iot_device_objects = resource(3)
