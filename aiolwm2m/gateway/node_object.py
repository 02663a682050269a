"""The gateway's instance of Object 32700, "Pub/Sub Node" (see :mod:`.node_model`)."""

from __future__ import annotations

from aiolwm2m.client.instance import Instance, resource
from aiolwm2m.lwm2m.model import ModelRegistry

from .node_model import NODE_STATE_MODEL, NODE_STATE_OBJECT

__all__ = ["NodeStateInstance"]

_MODEL = ModelRegistry([NODE_STATE_MODEL])


class NodeStateInstance(Instance, object_id=NODE_STATE_OBJECT, model=_MODEL):
    online = resource(0, default=False)
    first_seen = resource(1)
    last_seen = resource(2)
    last_publish = resource(3)
    publishes = resource(4, default=0)
    last_topic = resource(5)
    subscriptions = resource(6, default=0)
    address = resource(7)
