"""Object instances whose values live elsewhere (a CoAP node, the broker's last values).

:func:`proxied_class` builds, once per object definition, an :class:`Instance` class with
every resource of the definition: values are kept as the device last reported them, writes
and executes by the LwM2M server are handed to the instance's ``forward`` hook (which sends
them on), and everything else (reads, observations, notification attributes, Discover) is
the client library's own behaviour.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiolwm2m.client.instance import ExecutableField, Instance, ResourceField, resource
from aiolwm2m.lwm2m.model import ModelRegistry, ObjectModel

__all__ = ["ForwardedInstance", "proxied_class"]

#: (instance, resource id, new value or None for an execute, execute arguments): None for a
#: write (sent on once the request is decoded), an awaitable for an execute.
Forward = Callable[["ForwardedInstance", int, Any, str], Awaitable[None] | None]
_classes: dict[tuple[int, str, int], type[ForwardedInstance]] = {}


class ForwardedInstance(Instance):
    """Base of the generated classes. ``forward`` is set by the end device that owns the
    instance; without it writes stay local and executes do nothing."""

    forward: Forward | None = None


def proxied_class(model: ModelRegistry, object_id: int) -> type[ForwardedInstance]:
    """The instance class of ``object_id`` as ``model`` defines it (the latest version a
    1.1 client may use)."""
    definition = model.get(object_id)
    if definition is None:
        raise KeyError(f"object {object_id} is not defined in the model")
    key = (object_id, definition.version, id(model))
    cls = _classes.get(key)
    if cls is None:
        cls = _build(definition, model)
        _classes[key] = cls
    return cls


def _build(definition: ObjectModel, model: ModelRegistry) -> type[ForwardedInstance]:
    namespace: dict[str, Any] = {}
    for rid, rm in definition.resources.items():
        if rm.executable:
            namespace[f"execute_{rid}"] = ExecutableField(rid, _executor(rid))
            continue
        field: ResourceField[Any] = resource(rid)
        field.write_hook = _writer(rid)
        namespace[f"resource_{rid}"] = field
    cls = type(f"Proxied{definition.id}", (ForwardedInstance,), namespace,
               object_id=definition.id, version=definition.version, model=model)
    return cls


def _writer(rid: int) -> Callable[[Any, Any], None]:
    def written(inst: ForwardedInstance, value: Any) -> None:
        if inst.forward is not None:
            inst.forward(inst, rid, value, "")

    return written


def _executor(rid: int) -> Callable[[ForwardedInstance, str], Awaitable[None] | None]:
    def executed(inst: ForwardedInstance, arguments: str) -> Awaitable[None] | None:
        if inst.forward is not None:
            return inst.forward(inst, rid, None, arguments)
        return None

    executed.__name__ = f"execute_{rid}"
    return executed
