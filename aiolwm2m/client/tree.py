"""The client's object tree: instances by object and id, and the data operations on them.

Sans-IO. The methods implement the semantics of the Device Management operations (Read,
Write replace / partial update, Create, Delete, Execute) and of Bootstrap-Write / Delete;
they raise :class:`~aiolwm2m.coap.errors.CoapRequestError` subclasses carrying the response
code the TS asks for (4.04 unknown path, 4.05 operation not allowed on the target, 4.00
inconsistent request), which the interfaces turn into responses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from aiolwm2m.coap.errors import BadRequest, MethodNotAllowed, NotFound
from aiolwm2m.lwm2m.formats import ObjectEntry
from aiolwm2m.lwm2m.model import ModelRegistry, ObjectModel
from aiolwm2m.lwm2m.nodes import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
)
from aiolwm2m.lwm2m.path import LwM2MPath

from .instance import Instance, InstanceOwner, client_version, core_model

log = logging.getLogger(__name__)

SECURITY, SERVER, ACCESS_CONTROL, DEVICE = 0, 1, 2, 3
# Objects never listed in Register and never reachable through Device Management.
HIDDEN_OBJECTS = frozenset({SECURITY, 21})
# 65535 is "no instance" in the TS; Create never hands it out.
_MAX_IID = 65534


class ObjectTree(InstanceOwner):
    def __init__(self, model: ModelRegistry | None = None) -> None:
        self.objects: dict[int, dict[int, Instance]] = {}
        self.factories: dict[int, type[Instance]] = {}
        self.model = model if model is not None else client_model()
        self.value_listeners: list[Callable[[LwM2MPath], None]] = []
        self.structure_listeners: list[Callable[[], None]] = []
        self.spawner: Callable[[Awaitable[Any]], None] | None = None

    # -- membership -----------------------------------------------------------------------

    def register_class(self, cls: type[Instance]) -> None:
        """Make ``cls`` the class instantiated by Create and Bootstrap-Write of its object."""
        self.factories[cls.object_id] = cls
        known = self.model.get(cls.object_id, cls.object_model.version)
        if known is not cls.object_model and known != cls.object_model:
            self.model.add(cls.object_model, replace=True)
        self.objects.setdefault(cls.object_id, {})

    def add(self, instance: Instance, *, announce: bool = True) -> Instance:
        oid = instance.object_id
        if oid not in self.factories:
            self.register_class(type(instance))
        bucket = self.objects.setdefault(oid, {})
        if instance.iid in bucket:
            raise BadRequest(f"/{oid}/{instance.iid} already exists")
        if not instance.object_model.multiple and bucket:
            raise BadRequest(f"object {oid} is single-instance")
        instance._owner = self
        bucket[instance.iid] = instance
        if announce:
            self._structure_changed()
        return instance

    def remove(self, object_id: int, instance_id: int, *, announce: bool = True) -> Instance:
        bucket = self.objects.get(object_id)
        if bucket is None or instance_id not in bucket:
            raise NotFound(f"/{object_id}/{instance_id} does not exist")
        inst = bucket.pop(instance_id)
        inst._owner = None
        inst.on_deleted()
        if announce:
            self._structure_changed()
        return inst

    def get(self, object_id: int, instance_id: int) -> Instance | None:
        return self.objects.get(object_id, {}).get(instance_id)

    def instances(self, object_id: int) -> list[Instance]:
        return [self.objects[object_id][i] for i in sorted(self.objects.get(object_id, {}))]

    def __iter__(self) -> Iterator[Instance]:
        for oid in sorted(self.objects):
            yield from self.instances(oid)

    def instance(self, path: LwM2MPath) -> Instance:
        bucket = self.objects.get(path[0])
        if bucket is None:
            raise NotFound(f"object {path[0]} is not implemented")
        inst = bucket.get(path[1])
        if inst is None:
            raise NotFound(f"/{path[0]}/{path[1]} does not exist")
        return inst

    def free_instance_id(self, object_id: int) -> int:
        used = self.objects.get(object_id, {})
        for iid in range(_MAX_IID + 1):
            if iid not in used:
                return iid
        raise BadRequest(f"object {object_id} has no free instance id")

    # -- InstanceOwner --------------------------------------------------------------------

    def resource_changed(self, instance: Instance, resource_id: int) -> None:
        path = LwM2MPath(instance.object_id, instance.iid, resource_id)
        for listener in list(self.value_listeners):
            listener(path)

    def spawn(self, work: Awaitable[Any]) -> None:
        if self.spawner is None:
            raise RuntimeError("the object tree is not attached to a running client")
        self.spawner(work)

    def _structure_changed(self) -> None:
        for listener in list(self.structure_listeners):
            listener()

    # -- Read -----------------------------------------------------------------------------

    def exists(self, path: LwM2MPath) -> bool:
        try:
            self.locate(path)
        except NotFound:
            return False
        return True

    def locate(self, path: LwM2MPath) -> None:
        """Raise NotFound unless ``path`` names something that exists."""
        if not path:
            return
        if path[0] not in self.objects:
            raise NotFound(f"object {path[0]} is not implemented")
        if len(path) == 1:
            return
        inst = self.instance(path)
        if len(path) == 2:
            return
        if path[2] not in inst.present():
            raise NotFound(f"{path} does not exist")
        if len(path) == 4:
            value = inst.get(path[2])
            if not isinstance(value, dict) or path[3] not in value:
                raise NotFound(f"{path} does not exist")

    def read(self, path: LwM2MPath) -> Node:
        """The node at ``path`` with the readable resources only (Read, Observe)."""
        if not path:
            raise MethodNotAllowed("Read needs an object, instance or resource path")
        oid = path[0]
        if oid not in self.objects:
            raise NotFound(f"object {oid} is not implemented")
        if len(path) == 1:
            return LwM2MObject(oid, {i.iid: i.to_node() for i in self.instances(oid)})
        inst = self.instance(path)
        if len(path) == 2:
            return inst.to_node()
        rid = path[2]
        rm = inst.resource_model(rid)
        if rm is None:
            raise NotFound(f"{path} does not exist")
        if not rm.readable:
            raise MethodNotAllowed(f"{path} is not readable")
        if rid not in inst.present():
            raise NotFound(f"{path} does not exist")
        node = inst.read_resource(rid)
        if node is None:
            raise NotFound(f"{path} has no value")
        if len(path) == 3:
            return node
        if not isinstance(node, MultipleResource) or path[3] not in node.instances:
            raise NotFound(f"{path} does not exist")
        return ResourceInstance(path[3], node.type, node.instances[path[3]])

    def numeric_value(self, path: LwM2MPath) -> float | None:
        """The value at a resource (instance) path when it is a number, else None."""
        if len(path) < 3:
            return None
        inst = self.get(path[0], path[1])
        if inst is None:
            return None
        value = inst.get(path[2])
        if len(path) == 4:
            value = value.get(path[3]) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    # -- Write ----------------------------------------------------------------------------

    def write(self, path: LwM2MPath, node: Node, *, replace: bool) -> None:
        """Write (``replace``: PUT) or Write partial update (POST) from a DM server."""
        if len(path) < 2:
            raise MethodNotAllowed("Write targets an object instance or a resource")
        inst = self.instance(path)
        if isinstance(node, ObjectInstance):
            for rid in node.resources:
                self._writable(inst, path.child(rid))
            if replace:
                for rid, f in inst.fields.items():
                    if rid not in node.resources and f.resolved.writable:
                        inst.reset_resource(rid)
            for rid, res in node.resources.items():
                self._apply(inst, rid, res, merge=not replace)
            return
        rid = path[2]
        self._writable(inst, path)
        if isinstance(node, ResourceInstance | MultipleResource | SingleResource):
            self._apply(inst, rid, node, merge=not replace)
            return
        raise BadRequest(f"a {type(node).__name__} cannot be written at {path}")

    def _writable(self, inst: Instance, path: LwM2MPath) -> None:
        rm = inst.resource_model(path[2])
        if rm is None or path[2] not in inst.fields:
            raise NotFound(f"{path} is not a resource of object {inst.object_id}")
        if not rm.writable:
            raise MethodNotAllowed(f"{path} is not writable")
        if len(path) == 4 and not rm.multiple:
            raise MethodNotAllowed(f"{path[:3]} has no resource instances")

    def _apply(self, inst: Instance, rid: int, node: Node, *, merge: bool) -> None:
        if not isinstance(node, SingleResource | MultipleResource | ResourceInstance):
            raise BadRequest(f"resource {rid}: not a resource value")
        try:
            inst.write_resource(node, rid, merge=merge)
        except (ValueError, TypeError) as e:
            raise BadRequest(f"/{inst.object_id}/{inst.iid}/{rid}: {e}") from None

    def bootstrap_write(self, path: LwM2MPath, node: Node) -> None:
        """Bootstrap-Write: creates missing instances, ignores access rights, and skips
        resources this client does not implement."""
        if not path:
            raise BadRequest("Bootstrap-Write needs an object path")
        if isinstance(node, LwM2MObject):
            for inst_node in node.instances.values():
                self.bootstrap_write(path.child(inst_node.id), inst_node)
            return
        oid = path[0]
        if oid not in self.factories:
            raise NotFound(f"object {oid} is not implemented")
        inst = self.get(oid, path[1])
        created = inst is None
        if inst is None:
            inst = self.add(self.factories[oid](path[1]), announce=False)
        if isinstance(node, ObjectInstance):
            items: Iterable[tuple[int, Node]] = node.resources.items()
        else:
            items = [(path[2], node)]
        for rid, res in items:
            if rid not in inst.fields:
                log.debug("bootstrap write: /%d/%d/%d not implemented, skipped", oid,
                          path[1], rid)
                continue
            self._apply(inst, rid, res, merge=False)
        if created:
            inst.on_created()
            self._structure_changed()

    # -- Create / Delete / Execute ---------------------------------------------------------

    def create(self, object_id: int, node: ObjectInstance | None) -> Instance:
        factory = self.factories.get(object_id)
        if factory is None:
            if object_id in self.objects:
                raise MethodNotAllowed(f"object {object_id} does not support Create")
            raise NotFound(f"object {object_id} is not implemented")
        if not factory.object_model.multiple and self.objects.get(object_id):
            raise BadRequest(f"object {object_id} is single-instance and has its instance")
        iid = node.id if node is not None else self.free_instance_id(object_id)
        if iid in self.objects.get(object_id, {}):
            raise BadRequest(f"/{object_id}/{iid} already exists")
        inst = factory(iid)
        if node is not None:
            for rid, res in node.resources.items():
                if rid not in inst.fields:
                    raise BadRequest(f"/{object_id}: resource {rid} is not defined")
                self._apply(inst, rid, res, merge=False)
        self.add(inst, announce=False)
        inst.on_created()
        self._structure_changed()
        return inst

    def delete(self, path: LwM2MPath) -> Instance:
        if len(path) != 2:
            raise MethodNotAllowed("Delete targets an object instance")
        inst = self.instance(path)
        if path[0] == DEVICE or not inst.object_model.multiple:
            raise MethodNotAllowed(f"/{path[0]} instances cannot be deleted")
        return self.remove(path[0], path[1])

    def executable(self, path: LwM2MPath) -> Instance:
        if len(path) != 3:
            raise MethodNotAllowed("Execute targets a resource")
        inst = self.instance(path)
        rm = inst.resource_model(path[2])
        if rm is None:
            raise NotFound(f"{path} does not exist")
        if not rm.executable or path[2] not in inst.executables:
            raise MethodNotAllowed(f"{path} is not executable")
        return inst

    # -- Register payload -----------------------------------------------------------------

    def object_entries(self) -> list[ObjectEntry]:
        """The objects and instances listed in Register / Update (Security excluded)."""
        out: list[ObjectEntry] = []
        for oid in sorted(self.objects):
            if oid in HIDDEN_OBJECTS:
                continue
            factory = self.factories.get(oid)
            version = factory.object_model.version if factory else None
            out.append(ObjectEntry(oid, version if version and version != "1.0" else None,
                                   tuple(sorted(self.objects[oid]))))
        return out

    def object_version(self, object_id: int) -> str:
        factory = self.factories.get(object_id)
        if factory is not None:
            return factory.object_model.version
        obj = self.model.get(object_id)
        return obj.version if obj is not None else "1.0"


def client_model(extra: Iterable[ObjectModel] = ()) -> ModelRegistry:
    """A registry with one definition per core object (the version a 1.1 client uses)."""
    core = core_model()
    chosen = [m for oid in core.object_ids() if (m := client_version(core, oid)) is not None]
    registry = ModelRegistry(chosen)
    for obj in extra:
        registry.add(obj, replace=True)
    return registry
