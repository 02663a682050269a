"""Resources a decoded payload holds that the model does not define for their object.

A device may answer with a resource of another version of an object than the one it
announced (a 1.1 device still sending a resource only 1.0 had, say). The decoders take such a
value with the type the format gives it (Opaque where the format carries no type) instead of
failing the whole payload; this finds them afterwards, so that a response can say which of
its values the model could not vouch for. Objects the model does not know at all are not
reported: nothing of theirs is checked in the first place.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model.registry import ModelRegistry
from .nodes import LwM2MObject, Node, ObjectInstance, Resource
from .path import LwM2MPath, path_from_trusted_ids

__all__ = ["unknown_in_composite", "unknown_resource_paths"]


def unknown_resource_paths(
    path: LwM2MPath, node: Node, model: ModelRegistry | None
) -> tuple[LwM2MPath, ...]:
    """The resource paths under ``node`` (standing at ``path``) that the current definition
    of their object lacks; empty when the object is undefined or every resource is known."""
    if model is None or not path:
        return ()
    obj = model.get(path[0])
    if obj is None:
        return ()
    defined = obj.resources
    if len(path) >= 3:
        return () if path[2] in defined else (path_from_trusted_ids(tuple(path[:3])),)
    found: list[LwM2MPath] = []
    if type(node) is ObjectInstance:
        _collect(path[0], node.id, node.resources, defined, found)
    elif type(node) is LwM2MObject:
        for iid, instance in node.instances.items():
            _collect(path[0], iid, instance.resources, defined, found)
    return tuple(found)


def _collect(
    oid: int,
    iid: int,
    resources: Mapping[int, Resource],
    defined: Mapping[int, object],
    found: list[LwM2MPath],
) -> None:
    for rid in resources:  # keys only: builds no resource node (nodes.instance_from_values)
        if rid not in defined:
            found.append(path_from_trusted_ids((oid, iid, rid)))


def unknown_in_composite(
    nodes: Mapping[LwM2MPath, Node], model: ModelRegistry | None
) -> tuple[LwM2MPath, ...]:
    """:func:`unknown_resource_paths` over the nodes of a composite response."""
    found: list[LwM2MPath] = []
    for path, node in nodes.items():
        found.extend(unknown_resource_paths(path, node, model))
    return tuple(found)
