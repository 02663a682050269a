"""Nodes from plain Python values, typed by the model, and plain values from nodes.

This is what lets users write ``await server.write("ep", "/3/0/14", "+02:00")`` or send
``{"0": "ACME", "1": "X1"}`` through the REST API instead of building node trees by hand.
Shapes accepted at each level:

* resource or resource instance: a scalar (``str``, ``int``, ``float``, ``bool``, ``bytes``,
  ``datetime``, :class:`ObjectLink`); a multiple resource: ``{instance id: scalar}`` or a
  list (instances 0..n-1);
* object instance: ``{resource id: value}``; object: ``{instance id: {...}}``.

Ids may be ints or decimal strings (JSON object keys are strings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .bounded_int import parse_decimal
from .errors import InvalidValue, shown
from .model import ModelRegistry, ResourceModel
from .nodes import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
)
from .path import MAX_ID, LwM2MPath
from .values import ObjectLink, ResourceType, Value

_NODE_TYPES = (LwM2MObject, ObjectInstance, SingleResource, MultipleResource, ResourceInstance)


def _infer_type(value: object) -> ResourceType:
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.INTEGER
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, bytes | bytearray):
        return ResourceType.OPAQUE
    if isinstance(value, dt.datetime):
        return ResourceType.TIME
    if isinstance(value, ObjectLink):
        return ResourceType.OBJLNK
    return ResourceType.STRING


def _id(key: object, what: str, path: LwM2MPath) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key  # (range-checked by the node constructors)
    if isinstance(key, str):
        number = parse_decimal(key, MAX_ID)
        if number is not None:
            return number
    raise InvalidValue(None, path, f"{what} id {shown(key, 24)} is not a number in 0..{MAX_ID}")


def _resource_model(model: ModelRegistry | None, oid: int, rid: int) -> ResourceModel | None:
    return model.resource(oid, rid) if model is not None else None


def _scalar_type(rm: ResourceModel | None, value: object) -> ResourceType:
    return rm.type if rm is not None else _infer_type(value)


def _resource(model: ModelRegistry | None, path: LwM2MPath, value: Any) -> Resource:
    oid, rid = path[0], path[2]
    rm = _resource_model(model, oid, rid)
    multiple = rm.multiple if rm is not None else isinstance(value, Mapping | list)
    if multiple:
        if isinstance(value, list):
            items = dict(enumerate(value))
        elif isinstance(value, Mapping):
            items = {_id(k, "resource instance", path): v for k, v in value.items()}
        else:
            raise InvalidValue(None, path, "a multiple resource takes {instance id: value}")
        first = next(iter(items.values()), None)
        rtype = _scalar_type(rm, first if first is not None else "")
        return MultipleResource(rid, rtype, items)
    if isinstance(value, Mapping | list):
        raise InvalidValue(None, path, "a single resource takes one value")
    return SingleResource(rid, _scalar_type(rm, value), value)


def _instance(model: ModelRegistry | None, path: LwM2MPath, value: Any) -> ObjectInstance:
    if not isinstance(value, Mapping):
        raise InvalidValue(None, path, "an object instance takes {resource id: value}")
    resources: dict[int, Resource] = {}
    for key, v in value.items():
        rid = _id(key, "resource", path)
        resources[rid] = _resource(model, path.child(rid), v)
    return ObjectInstance(path[1], resources)


def build_node(model: ModelRegistry | None, path: LwM2MPath, value: Any) -> Node:
    """The node at ``path`` holding ``value`` (returned as is when it already is a node)."""
    if isinstance(value, _NODE_TYPES):
        return value
    depth = len(path)
    if depth == 4:
        rm = _resource_model(model, path[0], path[2])
        return ResourceInstance(path[3], _scalar_type(rm, value), value)
    if depth == 3:
        return _resource(model, path, value)
    if depth == 2:
        return _instance(model, path, value)
    if depth == 1:
        if not isinstance(value, Mapping):
            raise InvalidValue(None, path, "an object takes {instance id: {...}}")
        instances = {}
        for key, v in value.items():
            iid = _id(key, "instance", path)
            instances[iid] = _instance(model, path.child(iid), v)
        return LwM2MObject(path[0], instances)
    raise InvalidValue(None, path, "the root takes no value")


def plain_value(value: Value) -> Any:
    """A JSON-friendly form of a typed value."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, ObjectLink):
        return str(value)
    return value


def node_to_plain(node: Node) -> Any:
    """The inverse of :func:`build_node`, with JSON-friendly scalars and string keys."""
    if isinstance(node, SingleResource | ResourceInstance):
        return plain_value(node.value)
    if isinstance(node, MultipleResource):
        return {str(k): plain_value(v) for k, v in node.instances.items()}
    if isinstance(node, ObjectInstance):
        return {str(k): node_to_plain(r) for k, r in node.resources.items()}
    return {str(k): node_to_plain(i) for k, i in node.instances.items()}
