"""The LwM2M node tree: objects, instances, resources, resource instances.

Nodes are immutable named tuples with class-aware equality: two nodes are equal when they are
of the same class and hold equal fields (a :class:`SingleResource` never equals a
:class:`ResourceInstance` with the same fields, nor a plain tuple). Child collections are
read-only mappings keyed by id.

The public constructors check ids and coerce values to the node's type (raising
:class:`~aiolwm2m.lwm2m.errors.InvalidValue`); the content-format decoders, which have checked
everything already, use the unchecked ``*_trusted`` builders at the bottom of this module to
keep decoding cheap.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeAlias

from .errors import InvalidValue, shown
from .path import MAX_ID, LwM2MPath, path_from_trusted_ids
from .values import ResourceType, Value, coerce_value

__all__ = [
    "LwM2MObject",
    "MultipleResource",
    "Node",
    "ObjectInstance",
    "Resource",
    "ResourceInstance",
    "SingleResource",
    "TimestampedNodes",
    "iter_leaves",
    "node_matches_path",
]

_new_tuple = tuple.__new__


def _check_id(kind: str, value: object, *, reserved_max: bool = False) -> int:
    limit = MAX_ID - 1 if reserved_max else MAX_ID
    if type(value) is not int or not 0 <= value <= limit:
        raise InvalidValue(None, None, f"{kind} id {shown(value, 24)} is outside 0..{limit}")
    return value


def _coerce(rtype: object, value: object) -> Value:
    if not isinstance(rtype, ResourceType):
        raise InvalidValue(None, None, f"{shown(rtype, 24)} is not a ResourceType")
    return coerce_value(rtype, value)


_tuple_eq: Callable[[object, object], bool] = tuple.__eq__  # type: ignore[assignment]


class _NodeEquality:
    """Equality that includes the class, shared by every node type."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and _tuple_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


# --- leaves ----------------------------------------------------------------------------------
class _SingleResourceFields(NamedTuple):
    id: int
    type: ResourceType
    value: Value


class SingleResource(_NodeEquality, _SingleResourceFields):
    """A single-instance resource holding one value."""

    __slots__ = ()

    def __new__(cls, id: int, type: ResourceType, value: Value) -> SingleResource:
        return _new_tuple(cls, (_check_id("resource", id), type, _coerce(type, value)))

    def __hash__(self) -> int:
        return hash((SingleResource, tuple.__hash__(self)))


class _ResourceInstanceFields(NamedTuple):
    id: int
    type: ResourceType
    value: Value


class ResourceInstance(_NodeEquality, _ResourceInstanceFields):
    """One instance of a multiple-instance resource, addressed as ``/o/i/r/ri``."""

    __slots__ = ()

    def __new__(cls, id: int, type: ResourceType, value: Value) -> ResourceInstance:
        return _new_tuple(cls, (_check_id("resource instance", id), type, _coerce(type, value)))

    def __hash__(self) -> int:
        return hash((ResourceInstance, tuple.__hash__(self)))


# --- containers -----------------------------------------------------------------------------
class _MultipleResourceFields(NamedTuple):
    id: int
    type: ResourceType
    instances: Mapping[int, Value]


class MultipleResource(_NodeEquality, _MultipleResourceFields):
    """A multiple-instance resource: resource-instance id -> value (possibly empty)."""

    __slots__ = ()

    def __new__(
        cls,
        id: int,
        type: ResourceType,
        instances: Mapping[int, Value],
    ) -> MultipleResource:
        checked = {
            _check_id("resource instance", ri): _coerce(type, value)
            for ri, value in instances.items()
        }
        return _new_tuple(cls, (_check_id("resource", id), type, MappingProxyType(checked)))

    def resource_instances(self) -> tuple[ResourceInstance, ...]:
        rtype = self.type
        return tuple(
            _new_tuple(ResourceInstance, (ri, rtype, v)) for ri, v in self.instances.items()
        )

    def __hash__(self) -> int:
        return hash((MultipleResource, self.id, self.type, frozenset(self.instances.items())))

    def __repr__(self) -> str:
        return (
            f"MultipleResource(id={self.id}, type={self.type!r}, instances={dict(self.instances)})"
        )


Resource: TypeAlias = SingleResource | MultipleResource


class _ObjectInstanceFields(NamedTuple):
    id: int
    resources: Mapping[int, Resource]


class ObjectInstance(_NodeEquality, _ObjectInstanceFields):
    """An object instance: resource id -> resource."""

    __slots__ = ()

    def __new__(cls, id: int, resources: Mapping[int, Resource]) -> ObjectInstance:
        checked: dict[int, Resource] = {}
        for rid, resource in resources.items():
            if type(resource) is not SingleResource and type(resource) is not MultipleResource:
                raise InvalidValue(None, None, f"resource {rid} is not a resource node")
            if resource.id != rid:
                raise InvalidValue(None, None, f"resource keyed {rid} has id {resource.id}")
            checked[rid] = resource
        iid = _check_id("object instance", id, reserved_max=True)
        return _new_tuple(cls, (iid, MappingProxyType(checked)))

    @classmethod
    def from_resources(cls, id: int, resources: Iterable[Resource]) -> ObjectInstance:
        return cls(id, {r.id: r for r in resources})

    def __hash__(self) -> int:
        return hash((ObjectInstance, self.id, frozenset(self.resources.items())))

    def __repr__(self) -> str:
        return f"ObjectInstance(id={self.id}, resources={dict(self.resources)})"


class _LwM2MObjectFields(NamedTuple):
    id: int
    instances: Mapping[int, ObjectInstance]


class LwM2MObject(_NodeEquality, _LwM2MObjectFields):
    """An object: instance id -> object instance (possibly empty)."""

    __slots__ = ()

    def __new__(cls, id: int, instances: Mapping[int, ObjectInstance]) -> LwM2MObject:
        checked: dict[int, ObjectInstance] = {}
        for iid, instance in instances.items():
            if type(instance) is not ObjectInstance:
                raise InvalidValue(None, None, f"instance {iid} is not an ObjectInstance")
            if instance.id != iid:
                raise InvalidValue(None, None, f"instance keyed {iid} has id {instance.id}")
            checked[iid] = instance
        return _new_tuple(cls, (_check_id("object", id), MappingProxyType(checked)))

    @classmethod
    def from_instances(cls, id: int, instances: Iterable[ObjectInstance]) -> LwM2MObject:
        return cls(id, {i.id: i for i in instances})

    def __hash__(self) -> int:
        return hash((LwM2MObject, self.id, frozenset(self.instances.items())))

    def __repr__(self) -> str:
        return f"LwM2MObject(id={self.id}, instances={dict(self.instances)})"


Node: TypeAlias = (
    LwM2MObject | ObjectInstance | SingleResource | MultipleResource | ResourceInstance
)


@dataclass(frozen=True, slots=True)
class TimestampedNodes:
    """Values that share one time, as SenML and LwM2M JSON carry them (Send, notifications).

    ``timestamp`` is seconds since the epoch, or ``None`` when the payload gave no time (or a
    time of 0, which SenML defines as "now"). SenML times below 2**28 are relative to the
    receiver's clock: :attr:`is_relative` tells, and :meth:`resolved` adds the caller's "now"
    (this layer has no clock).
    """

    timestamp: float | None
    nodes: Mapping[LwM2MPath, Node]

    @property
    def is_relative(self) -> bool:
        return self.timestamp is not None and abs(self.timestamp) < 2**28

    def resolved(self, now: float) -> TimestampedNodes:
        if self.timestamp is None:
            return TimestampedNodes(now, self.nodes)
        if self.is_relative:
            return TimestampedNodes(now + self.timestamp, self.nodes)
        return self


# --- helpers shared by the encoders ---------------------------------------------------------
def node_matches_path(path: LwM2MPath, node: Node) -> str | None:
    """Why ``node`` cannot stand at ``path``, or ``None`` when it can."""
    depth = len(path)
    node_type = type(node)
    expected: tuple[type, ...]
    if depth == 1:
        expected = (LwM2MObject,)
    elif depth == 2:
        expected = (ObjectInstance,)
    elif depth == 3:
        expected = (SingleResource, MultipleResource)
    elif depth == 4:
        expected = (ResourceInstance,)
    else:
        return "no node stands at the root"
    if node_type not in expected:
        return f"a {node_type.__name__} cannot stand at {path.level_name} path {path}"
    if node.id != path[-1]:
        return f"node id {node.id} does not match path {path}"
    return None


def iter_leaves(path: LwM2MPath, node: Node) -> Iterator[tuple[LwM2MPath, ResourceType, Value]]:
    """Yield ``(path, type, value)`` for every value under ``node`` (which stands at ``path``).

    Empty multiple resources and empty instances yield nothing.
    """
    if isinstance(node, SingleResource | ResourceInstance):
        yield path, node.type, node.value
    elif isinstance(node, MultipleResource):
        rtype = node.type
        for ri, value in node.instances.items():
            yield path_from_trusted_ids((*path, ri)), rtype, value
    elif isinstance(node, ObjectInstance):
        for rid, resource in node.resources.items():
            yield from iter_leaves(path_from_trusted_ids((*path, rid)), resource)
    else:
        for iid, instance in node.instances.items():
            yield from iter_leaves(path_from_trusted_ids((*path, iid)), instance)


# --- unchecked builders for decoders ---------------------------------------------------------
def single_trusted(rid: int, rtype: ResourceType, value: Value) -> SingleResource:
    return _new_tuple(SingleResource, (rid, rtype, value))


def resource_instance_trusted(ri: int, rtype: ResourceType, value: Value) -> ResourceInstance:
    return _new_tuple(ResourceInstance, (ri, rtype, value))


def multiple_trusted(rid: int, rtype: ResourceType, values: dict[int, Value]) -> MultipleResource:
    return _new_tuple(MultipleResource, (rid, rtype, MappingProxyType(values)))


def instance_trusted(iid: int, resources: dict[int, Resource]) -> ObjectInstance:
    return _new_tuple(ObjectInstance, (iid, MappingProxyType(resources)))


def object_trusted(oid: int, instances: dict[int, ObjectInstance]) -> LwM2MObject:
    return _new_tuple(LwM2MObject, (oid, MappingProxyType(instances)))


# --- instances whose resource nodes are built on first read -------------------------------------
# Building the twenty-odd resource tuples of an object instance costs more than cbor2 takes to
# decode the whole payload, and many consumers (a forwarder, a check of one resource, a store of
# the raw values) read few of them or none. The decoders' fast paths therefore hand over checked
# values only: the instance's mapping proxies a dict holding the final keys, and the first read
# of any value builds every node in place and turns the dict into a plain _ResourceDict, whose
# reads are ordinary C dict reads from then on. Reading keys (len, `in`, iteration) builds
# nothing. Every dict method that shows values is overridden below; the proxy offers no way to
# mutate the dict.
class _ResourceDict(dict[int, Resource]):
    """The dict behind a decoded instance's resources: a plain dict once built."""

    __slots__ = ("_rtypes", "_values")
    _values: dict[int, object] | None
    _rtypes: Mapping[int, ResourceType]


class _PendingResourceDict(_ResourceDict):
    """Resource id -> node, with the nodes built from ``_values`` on first read."""

    __slots__ = ()

    def _build(self) -> None:
        values = self._values
        if values is None:  # built by another thread just now
            return
        rtypes = self._rtypes
        new, proxy = _new_tuple, MappingProxyType
        single, multiple = SingleResource, MultipleResource
        built: dict[int, Resource] = {}
        for rid, value in values.items():
            if type(value) is dict:
                built[rid] = new(multiple, (rid, rtypes[rid], proxy(value)))
            else:
                built[rid] = new(single, (rid, rtypes[rid], value))
        # One C call swaps every value, so that a concurrent reader sees all or none.
        dict.update(self, built)
        self._values = None
        self.__class__ = _ResourceDict  # type: ignore[assignment]

    def __getitem__(self, key: int) -> Resource:
        self._build()
        return dict.__getitem__(self, key)

    def get(self, key: int, default: object = None) -> object:  # type: ignore[override]
        self._build()
        return dict.get(self, key, default)

    def values(self) -> ValuesView[Resource]:  # type: ignore[override]
        self._build()
        return dict.values(self)

    def items(self) -> ItemsView[int, Resource]:  # type: ignore[override]
        self._build()
        return dict.items(self)

    def copy(self) -> dict[int, Resource]:
        self._build()
        return dict.copy(self)

    def __eq__(self, other: object) -> bool:
        self._build()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._build()
        return dict.__ne__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._build()
        return dict.__repr__(self)

    def __or__(self, other: Any) -> Any:
        self._build()
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        self._build()
        return dict.__ror__(self, other)


def instance_from_values(
    iid: int, values: dict[int, object], rtypes: Mapping[int, ResourceType]
) -> ObjectInstance:
    """An instance of checked values, its resource nodes built on first read.

    ``values`` maps resource id -> value, or -> {resource instance id: value} for a multiple
    resource, and becomes the instance's (the caller must not keep it); ``rtypes`` gives the
    type of every resource id in it.
    """
    pending = _PendingResourceDict(values)  # type: ignore[arg-type]
    pending._values = values
    pending._rtypes = rtypes
    return _new_tuple(ObjectInstance, (iid, MappingProxyType(pending)))
