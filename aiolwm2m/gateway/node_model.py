"""Object 32700, "Pub/Sub Node": what a gateway running the broker knows of a node behind
it (CoP-002), exposed as LwM2M data of the node's end device.

An object of this project (the OMNA range 26241-32768 is for objects that are not
registered); servers of this project know it, others read it as unknown resources.
"""

from __future__ import annotations

from typing import Final

from aiolwm2m.lwm2m.model import ModelRegistry, ObjectModel, Operations, ResourceModel
from aiolwm2m.lwm2m.values import ResourceType

__all__ = ["NODE_STATE_MODEL", "NODE_STATE_OBJECT", "add_node_model"]

NODE_STATE_OBJECT: Final = 32700
_R = Operations.R
_T = ResourceType

NODE_STATE_MODEL: Final = ObjectModel(
    NODE_STATE_OBJECT, "Pub/Sub Node", "1.0", False, False,
    "What the gateway's pub/sub broker knows of this node: whether it is reachable, when it "
    "was heard from, what it published.", f"urn:oma:lwm2m:x:{NODE_STATE_OBJECT}", "1.1",
    {r.id: r for r in (
        ResourceModel(0, "Online", _R, False, True, _T.BOOLEAN, description=(
            "Heard from within the online window, or holding a subscription the broker's "
            "observer-check keeps confirming.")),
        ResourceModel(1, "First Seen", _R, False, True, _T.TIME),
        ResourceModel(2, "Last Seen", _R, False, True, _T.TIME),
        ResourceModel(3, "Last Publish", _R, False, False, _T.TIME),
        ResourceModel(4, "Publishes", _R, False, True, _T.INTEGER,
                      description="Publications since the gateway started."),
        ResourceModel(5, "Last Topic", _R, False, False, _T.STRING),
        ResourceModel(6, "Subscriptions", _R, False, True, _T.INTEGER,
                      description="Subscriptions the node's address holds at the broker."),
        ResourceModel(7, "Address", _R, False, False, _T.STRING,
                      description="IP address the node last published from."),
    )})


def add_node_model(model: ModelRegistry) -> None:
    """Teach ``model`` the object (a no-op when it knows it)."""
    if model.get(NODE_STATE_OBJECT) is None:
        model.add(NODE_STATE_MODEL)
