"""Assembling flat leaf values into the node that stands at a request path.

SenML, LwM2M JSON and LwM2M CBOR payloads are, once parsed, lists of leaves: one value per
resource or resource instance path. :func:`assemble` turns such a list into the object,
instance, resource or resource instance at the base path, checking that every leaf is under
the base path, that no path appears twice, and that multiplicity agrees with the model.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidPayload, InvalidValue, PathNotAllowed
from ..model.registry import ModelRegistry
from ..nodes import (
    Node,
    ObjectInstance,
    Resource,
    instance_trusted,
    multiple_trusted,
    object_trusted,
    resource_instance_trusted,
    single_trusted,
)
from ..path import LwM2MPath
from ..values import ResourceType, Value
from .value_mapping import ResourceInfo

__all__ = ["Leaf", "assemble", "group_leaves", "omits_instance"]

# path (resource or resource instance), type, value, model info, record index (or None)
Leaf = tuple[LwM2MPath, ResourceType, Value, ResourceInfo, "int | None"]


def assemble(
    fmt: int, base: LwM2MPath, leaves: Iterable[Leaf], base_info: ResourceInfo = None
) -> Node:
    """The node at ``base`` built from ``leaves`` (all at resource or resource-instance depth).

    ``base_info`` is the model's (type, multiple) for a resource-level base, used to build an
    empty multiple resource from an empty payload.
    """
    depth = len(base)
    if depth == 0:
        raise PathNotAllowed(fmt, base, "a single node cannot stand at the root")
    resources: dict[int, dict[int, Resource]] = {}
    multiples: dict[tuple[int, int], tuple[ResourceType, dict[int, Value]]] = {}
    found_single: Leaf | None = None
    count = 0
    for leaf in leaves:
        path = leaf[0]
        if path[:depth] != base:
            raise PathNotAllowed(fmt, path, f"is outside the request path {base}", index=leaf[4])
        count += 1
        if len(path) == 3:
            _check_single(fmt, leaf)
            if depth == 3:
                if found_single is not None or multiples:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
                found_single = leaf
                continue
            by_rid = resources.setdefault(path[1], {})
            rid = path[2]
            if rid in by_rid or (path[1], rid) in multiples:
                raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
            by_rid[rid] = single_trusted(rid, leaf[1], leaf[2])
        else:
            _check_multiple(fmt, leaf)
            if depth == 4:
                if count > 1:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
                found_single = leaf
                continue
            key = (path[1], path[2])
            if key in multiples:
                values = multiples[key][1]
                if path[3] in values:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
                values[path[3]] = leaf[2]
            else:
                if path[2] in resources.get(path[1], ()) or found_single is not None:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
                multiples[key] = (leaf[1], {path[3]: leaf[2]})
                resources.setdefault(path[1], {})[path[2]] = None  # type: ignore[assignment]

    if depth == 4:
        if found_single is None:
            raise InvalidPayload(fmt, base, "the payload holds no value for the path")
        return resource_instance_trusted(base[3], found_single[1], found_single[2])
    if depth == 3:
        if found_single is not None:
            return single_trusted(base[2], found_single[1], found_single[2])
        if multiples:
            rtype, values = multiples[(base[1], base[2])]
            return multiple_trusted(base[2], rtype, values)
        if base_info is not None and base_info[1]:
            return multiple_trusted(base[2], base_info[0], {})
        raise InvalidPayload(fmt, base, "the payload holds no value for the path")

    for (iid, rid), (rtype, values) in multiples.items():
        resources[iid][rid] = multiple_trusted(rid, rtype, values)
    if depth == 2:
        return instance_trusted(base[1], resources.get(base[1], {}))
    instances: dict[int, ObjectInstance] = {
        iid: instance_trusted(iid, by_rid) for iid, by_rid in sorted(resources.items())
    }
    return object_trusted(base[0], instances)


def _check_single(fmt: int, leaf: Leaf) -> None:
    info = leaf[3]
    if info is not None and info[1]:
        raise InvalidValue(
            fmt,
            leaf[0],
            "the resource is multiple-instance: values need an instance id",
            index=leaf[4],
        )


def _check_multiple(fmt: int, leaf: Leaf) -> None:
    info = leaf[3]
    if info is not None and not info[1]:
        raise InvalidValue(
            fmt,
            leaf[0],
            "the resource is single-instance: it has no resource instances",
            index=leaf[4],
        )


def group_leaves(
    fmt: int, leaves: Iterable[Leaf], paths: list[LwM2MPath] | None
) -> dict[LwM2MPath, Node]:
    """Composite results: the node at each requested path, or one node per leaf.

    Without ``paths`` every leaf stands alone (a :class:`SingleResource` or
    :class:`ResourceInstance` keyed by its own path). With ``paths`` each leaf goes to the
    requested path that contains it (the deepest one when requests overlap); requested paths
    the payload has no value for are left out, as clients do for unreadable paths.
    """
    if paths is None:
        out: dict[LwM2MPath, Node] = {}
        for leaf in leaves:
            path = leaf[0]
            if path in out:
                raise InvalidPayload(fmt, path, "the path appears twice", index=leaf[4])
            if len(path) == 3:
                _check_single(fmt, leaf)
                out[path] = single_trusted(path[2], leaf[1], leaf[2])
            else:
                out[path] = resource_instance_trusted(path[3], leaf[1], leaf[2])
        return out
    # Each leaf goes to its deepest requested prefix: at most five dict lookups per leaf,
    # whatever the number of requested paths.
    requested_set: set[tuple[int, ...]] = set(paths)
    buckets: dict[tuple[int, ...], list[Leaf]] = {}
    for leaf in leaves:
        path = leaf[0]
        for depth in range(len(path), -1, -1):
            prefix = path[:depth]  # (a path equals, and hashes as, the tuple of its ids)
            if prefix in requested_set:
                buckets.setdefault(prefix, []).append(leaf)
                break
        else:
            raise PathNotAllowed(fmt, path, "was not requested", index=leaf[4])
    result: dict[LwM2MPath, Node] = {}
    for requested in paths:
        bucket = buckets.get(requested)
        if bucket is None or requested in result:
            continue
        if len(requested) == 0:
            result.update(group_leaves(fmt, bucket, None))
        else:
            result[requested] = assemble(fmt, requested, bucket)
    return result


def omits_instance(
    fmt: int, object_id: int, paths: list[LwM2MPath], model: ModelRegistry | None
) -> bool:
    """Whether the value paths of a Create of ``object_id`` leave out the instance id.

    A Create may name its instance (``/o/i/r``, ``/o/i/r/ri``) or let the client pick one
    (``/o/r``, ``/o/r/ri``: LwM2M 1.1 lets the server omit it). A two-level path settles it
    (a value never stands at an instance); so does a four-level one. Paths that all have
    three levels read both ways (instance ``a`` with resource ``b``, or resource ``a`` with
    instance ``b``): the first is the reading TS payloads use, the second is taken only when
    the model allows it alone (every ``a`` a multiple resource, some ``b`` not a single one).
    """
    depths = {len(path) for path in paths}
    if 2 in depths:
        if 4 in depths:
            raise InvalidPayload(
                fmt, LwM2MPath(object_id), "mixes values with and without an instance id"
            )
        return True
    if 4 in depths or not paths or model is None:
        return False
    obj = model.get(object_id)
    if obj is None:
        return False
    resources = obj.resources
    as_resources = all(
        (found := resources.get(path[1])) is not None and found.multiple for path in paths
    )
    if not as_resources:
        return False
    as_instance = all(
        (found := resources.get(path[2])) is not None and not found.multiple for path in paths
    )
    return not as_instance
