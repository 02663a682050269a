"""Object instances as Python classes: the declarative API for standard and user objects.

::

    class Thermometer(Instance, object_id=3303):
        value = resource(5700, default=20.0)
        units = resource(5701, default="Cel")

        @execute(5605)
        def reset_min_max(self, arguments: str) -> None:
            self.value = 20.0

    t = Thermometer(0)
    t.value = 21.5          # observers of /3303/0/5700 are told

Resource types, operations (R/W/E) and multiplicity come from the object definition in the
model (the core registry by default, the latest version a 1.1 client may use). A resource the
model does not define gives its ``type`` (and ``operations``) in :func:`resource`; a class
whose object the model does not know gets a definition built from its fields.

Values are kept in their canonical Python form (see :mod:`aiolwm2m.lwm2m.values`); a
multiple-instance resource holds ``{instance id: value}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar, overload

from aiolwm2m.lwm2m.model import ModelRegistry, ObjectModel, Operations, ResourceModel
from aiolwm2m.lwm2m.model.definitions import version_key
from aiolwm2m.lwm2m.nodes import (
    MultipleResource,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
)
from aiolwm2m.lwm2m.values import ResourceType, coerce_value

from .control import ClientControl

__all__ = [
    "ExecutableField",
    "Instance",
    "InstanceOwner",
    "ResourceField",
    "core_model",
    "execute",
    "resource",
]

T = TypeVar("T")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_CLIENT_LWM2M_VERSION = (1, 1)
_core: ModelRegistry | None = None


def core_model() -> ModelRegistry:
    """The shipped object definitions, loaded once and shared by every class."""
    global _core
    if _core is None:
        _core = ModelRegistry.with_core_objects()
    return _core


def client_version(registry: ModelRegistry, object_id: int) -> ObjectModel | None:
    """The latest definition of ``object_id`` that an LwM2M 1.1 client may implement."""
    best: ObjectModel | None = None
    for version in registry.versions(object_id):
        obj = registry.get(object_id, version)
        if obj is None or version_key(obj.lwm2m_version) > _CLIENT_LWM2M_VERSION:
            continue
        best = obj
    return best


class InstanceOwner:
    """What an instance tells about itself once it lives in a tree (see ObjectTree)."""

    #: The running client's controls (None while the tree is not attached to a client).
    control: ClientControl | None = None

    def resource_changed(self, instance: Instance, resource_id: int) -> None:
        """A resource value changed (locally or by a server write)."""

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run background work (a download, an update) on the owner's event loop."""
        raise RuntimeError("this instance is not attached to a running client")


# -- descriptors --------------------------------------------------------------------------


class ResourceField(Generic[T]):
    """A readable and/or writable resource of an :class:`Instance` subclass."""

    def __init__(self, resource_id: int, *, default: Any = MISSING,
                 type: ResourceType | None = None, multiple: bool | None = None,
                 operations: str | None = None, name: str = "") -> None:
        self.id = resource_id
        self.default = default
        self.declared_type = type
        self.declared_multiple = multiple
        self.declared_operations = operations
        self.name = name
        self.attribute = ""
        self.model: ResourceModel | None = None
        self.read_hook: Callable[[Any], Any] | None = None
        self.write_hook: Callable[[Any, Any], None] | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name
        if not self.name:
            self.name = name

    @property
    def resolved(self) -> ResourceModel:
        if self.model is None:
            raise RuntimeError(f"resource {self.id} is not bound to an object definition")
        return self.model

    def bind(self, model: ResourceModel | None, object_id: int) -> ResourceModel:
        if model is None:
            if self.declared_type is None:
                raise TypeError(f"/{object_id}: resource {self.id} ({self.attribute}) is not "
                                "in the object definition; give it a type=")
            ops = self.declared_operations if self.declared_operations is not None else "RW"
            model = ResourceModel(self.id, self.name or self.attribute,
                                  Operations.from_ddf_name(ops),
                                  bool(self.declared_multiple), False, self.declared_type)
        elif self.declared_type is not None and self.declared_type != model.type:
            raise TypeError(f"/{object_id}/x/{self.id} is {model.type.value}, not "
                            f"{self.declared_type.value}")
        elif self.declared_operations is not None:
            model = ResourceModel(model.id, model.name,
                                  Operations.from_ddf_name(self.declared_operations),
                                  model.multiple, model.mandatory, model.type,
                                  model.range_enumeration, model.units, model.description)
        self.model = model
        return model

    def reader(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Decorate a method computing the value on every read (instead of a stored one)."""
        self.read_hook = fn
        return fn

    def on_write(self, fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        """Decorate a method called with the new value when a server writes it; raising
        ``ValueError`` rejects the write with 4.00 Bad Request."""
        self.write_hook = fn
        return fn

    @overload
    def __get__(self, instance: None, owner: type) -> ResourceField[T]: ...

    @overload
    def __get__(self, instance: Instance, owner: type) -> T: ...

    def __get__(self, instance: Instance | None, owner: type) -> Any:
        if instance is None:
            return self
        return instance.get(self.id)

    def __set__(self, instance: Instance, value: T) -> None:
        instance.set(self.id, value)


class ExecutableField:
    """An executable resource; the decorated method takes the Execute arguments (text)."""

    def __init__(self, resource_id: int, fn: Callable[..., Any]) -> None:
        self.id = resource_id
        self.fn = fn
        self.model: ResourceModel | None = None

    def __get__(self, instance: Instance | None, owner: type) -> Any:
        if instance is None:
            return self
        return self.fn.__get__(instance, owner)

    def bind(self, model: ResourceModel | None, object_id: int) -> ResourceModel:
        if model is None:
            model = ResourceModel(self.id, self.fn.__name__, Operations.E, False, False,
                                  ResourceType.NONE)
        self.model = model
        return model


def resource(resource_id: int, *, default: Any = MISSING, type: ResourceType | None = None,
             multiple: bool | None = None, operations: str | None = None,
             name: str = "") -> ResourceField[Any]:
    """Declare a resource. ``default`` is its value until set (absent when not given);
    ``type``/``multiple``/``operations`` are only needed for resources the model lacks."""
    return ResourceField(resource_id, default=default, type=type, multiple=multiple,
                         operations=operations, name=name)


def execute(resource_id: int) -> Callable[[Callable[..., Any]], Any]:
    """Declare an executable resource: ``@execute(4) def reboot(self, arguments): ...``
    (plain or ``async``)."""

    def wrap(fn: Callable[..., Any]) -> Any:
        return ExecutableField(resource_id, fn)

    return wrap


# -- the base class -----------------------------------------------------------------------


class Instance:
    """One object instance. Subclass with ``object_id=`` and declare resources."""

    object_id: ClassVar[int]
    object_model: ClassVar[ObjectModel]
    fields: ClassVar[dict[int, ResourceField[Any]]]
    executables: ClassVar[dict[int, ExecutableField]]
    #: Whether a Bootstrap-Delete of ``/`` or of the object removes this instance; single
    #: instance objects (Device, Firmware Update...) stay by default.
    deletable: ClassVar[bool] = True

    def __init_subclass__(cls, object_id: int | None = None, version: str | None = None,
                          model: ModelRegistry | None = None, multiple: bool | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if object_id is None:
            if not hasattr(cls, "object_id"):
                return  # an intermediate base class
            object_id = cls.object_id
        registry = model or core_model()
        base = registry.get(object_id, version) if version else client_version(registry,
                                                                               object_id)
        fields: dict[int, ResourceField[Any]] = {}
        executables: dict[int, ExecutableField] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, ResourceField):
                    fields[value.id] = value
                elif isinstance(value, ExecutableField):
                    executables[value.id] = value
        resources: dict[int, ResourceModel] = {}
        for rid, f in fields.items():
            resources[rid] = f.bind(base.resource(rid) if base else None, object_id)
        for rid, e in executables.items():
            resources[rid] = e.bind(base.resource(rid) if base else None, object_id)
        if base is None:
            base = ObjectModel(object_id, cls.__name__, "1.0",
                               True if multiple is None else multiple, False,
                               resources=resources)
        cls.object_id = object_id
        cls.object_model = base
        cls.fields = fields
        cls.executables = executables
        if "deletable" not in vars(cls):
            cls.deletable = base.multiple

    def __init__(self, iid: int = 0, **values: Any) -> None:
        self.iid = iid
        self._owner: InstanceOwner | None = None
        self._values: dict[int, Any] = {}
        for rid, f in self.fields.items():
            if f.default is not MISSING:
                self._values[rid] = self._coerce(rid, _copy_default(f.default))
        for name, value in values.items():
            field = getattr(type(self), name, None)
            if not isinstance(field, ResourceField):
                raise TypeError(f"{type(self).__name__} has no resource {name!r}")
            self._values[field.id] = self._coerce(field.id, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} /{self.object_id}/{self.iid}>"

    # -- values ---------------------------------------------------------------------------

    def resource_model(self, resource_id: int) -> ResourceModel | None:
        f = self.fields.get(resource_id)
        if f is not None:
            return f.model
        e = self.executables.get(resource_id)
        return e.model if e is not None else None

    def _coerce(self, resource_id: int, value: Any) -> Any:
        rm = self.fields[resource_id].resolved
        if rm.multiple:
            items = dict(enumerate(value)) if isinstance(value, list | tuple) else value
            if not isinstance(items, Mapping):
                raise TypeError(f"/{self.object_id}/{self.iid}/{resource_id} takes "
                                "{instance id: value}")
            return {int(k): coerce_value(rm.type, v) for k, v in items.items()}
        return coerce_value(rm.type, value)

    def get(self, resource_id: int) -> Any:
        """The current value (computed by a reader when there is one), or None if absent."""
        f = self.fields.get(resource_id)
        if f is not None and f.read_hook is not None:
            return f.read_hook(self)
        return self._values.get(resource_id)

    def set(self, resource_id: int, value: Any) -> None:
        """Set a value locally (``None`` removes it) and tell observers."""
        if value is None:
            self._values.pop(resource_id, None)
        else:
            self._values[resource_id] = self._coerce(resource_id, value)
        self.changed(resource_id)

    def store(self, resource_id: int, value: Any) -> None:
        """Set a value without telling anyone (for bulk updates followed by changed())."""
        if value is None:
            self._values.pop(resource_id, None)
        else:
            self._values[resource_id] = self._coerce(resource_id, value)

    def changed(self, resource_id: int) -> None:
        if self._owner is not None:
            self._owner.resource_changed(self, resource_id)

    def spawn(self, work: Awaitable[Any]) -> None:
        if self._owner is None:
            raise RuntimeError(f"{self!r} is not attached to a running client")
        self._owner.spawn(work)

    @property
    def control(self) -> ClientControl | None:
        return self._owner.control if self._owner is not None else None

    # -- what the object tree uses ---------------------------------------------------------

    def present(self) -> Iterable[int]:
        """Ids of the resources that currently exist (have a value), executables included."""
        out: list[int] = []
        for rid, f in self.fields.items():
            if f.read_hook is not None or rid in self._values:
                out.append(rid)
        out.extend(self.executables)
        return sorted(out)

    def read_resource(self, resource_id: int) -> Resource | None:
        f = self.fields.get(resource_id)
        if f is None:
            return None
        value = self.get(resource_id)
        if value is None:
            return None
        rm = f.resolved
        if rm.multiple:
            items = value if f.read_hook is None else self._coerce(resource_id, value)
            return MultipleResource(resource_id, rm.type, items)
        if f.read_hook is not None:
            value = coerce_value(rm.type, value)
        return SingleResource(resource_id, rm.type, value)

    def to_node(self, readable_only: bool = True) -> ObjectInstance:
        resources: dict[int, Resource] = {}
        for rid, f in self.fields.items():
            if readable_only and not f.resolved.readable:
                continue
            node = self.read_resource(rid)
            if node is not None:
                resources[rid] = node
        return ObjectInstance(self.iid, resources)

    def write_resource(self, node: Resource | ResourceInstance, resource_id: int,
                       *, merge: bool = False) -> None:
        """Apply a server's write of one resource (or one resource instance)."""
        f = self.fields[resource_id]
        rm = f.resolved
        if isinstance(node, ResourceInstance):
            current = dict(self._values.get(resource_id) or {})
            current[node.id] = node.value
            value: Any = current
        elif isinstance(node, MultipleResource):
            if not rm.multiple:
                raise ValueError(f"resource {resource_id} is single-instance")
            value = dict(node.instances)
            if merge:
                value = {**(self._values.get(resource_id) or {}), **value}
        else:
            if rm.multiple:
                raise ValueError(f"resource {resource_id} is multiple-instance")
            value = node.value
        value = self._coerce(resource_id, value)
        if f.write_hook is not None:
            f.write_hook(self, value if not rm.multiple else dict(value))
        self._values[resource_id] = value
        self.changed(resource_id)

    def reset_resource(self, resource_id: int) -> None:
        """Back to the default (or absent): what a Replace does to resources it omits."""
        f = self.fields[resource_id]
        if f.default is MISSING:
            self._values.pop(resource_id, None)
        else:
            self._values[resource_id] = self._coerce(resource_id, _copy_default(f.default))
        self.changed(resource_id)

    async def execute_resource(self, resource_id: int, arguments: str) -> None:
        result = self.executables[resource_id].fn(self, arguments)
        if inspect.isawaitable(result):
            await result

    def on_created(self) -> None:
        """Called after a server (or bootstrap server) created this instance."""

    def on_deleted(self) -> None:
        """Called after this instance was removed from its tree."""


def _copy_default(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(
        value, list) else value

