"""Content-format names the REST API accepts, and JSON renderings of LwM2M values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ModelRegistry
from aiolwm2m.lwm2m.bounded_int import MAX_UINT16, parse_decimal
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.lwm2m.model import ResourceModel
from aiolwm2m.lwm2m.nodes import (
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
)
from aiolwm2m.lwm2m.values import ResourceType, Value

from .json_values import json_scalar

FORMAT_NAMES: dict[str, int] = {
    "text": ContentFormat.TEXT,
    "opaque": ContentFormat.OPAQUE,
    "cbor": ContentFormat.CBOR,
    "tlv": ContentFormat.TLV,
    "senml-json": ContentFormat.SENML_JSON,
    "senml-cbor": ContentFormat.SENML_CBOR,
    "lwm2m-json": ContentFormat.LWM2M_JSON,
    "lwm2m-cbor": ContentFormat.LWM2M_CBOR,
    "link": ContentFormat.LINK_FORMAT,
}


def parse_format(text: str | int | None) -> int | None:
    """``"senml-cbor"``, ``"112"`` or 112 -> 112; None stays None (client default)."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        if not 0 <= text <= MAX_UINT16:  # a Content-Format option holds 0..65535
            raise ValueError(f"content format {shown(text, 12)} is outside 0..{MAX_UINT16}")
        return text
    key = text.strip().lower()
    if key in FORMAT_NAMES:
        return FORMAT_NAMES[key]
    number = parse_decimal(key, MAX_UINT16)
    if number is not None:
        return number
    raise ValueError(f"unknown content format {shown(text, 24)}; use a number in "
                     f"0..{MAX_UINT16} or one of {', '.join(sorted(FORMAT_NAMES))}")


_NAME_OF: dict[int, str] = {}
for _name, _number in FORMAT_NAMES.items():
    _NAME_OF.setdefault(_number, _name)


def format_name(fmt: int | None) -> str | None:
    if fmt is None:
        return None
    return _NAME_OF.get(fmt) or str(fmt)


def leaf_values(path: LwM2MPath, node: Node, model: ModelRegistry) -> list[dict[str, Any]]:
    """Every value under ``node`` with its path, resource name, type and units (Opaque
    values as ``{"base64": ...}``, see :mod:`.json_values`)."""
    values: list[dict[str, Any]] = []
    _walk(node, _prefix(path), path[2] if len(path) > 2 else 0,
          _ResourceModels(model, path[0] if path else -1), values)
    return values


def node_json(path: LwM2MPath, node: Node | None, model: ModelRegistry) -> dict[str, Any]:
    """``{"content": node as {id: ...}, "values": leaf_values(...)}``, in one walk."""
    if node is None:
        return {"content": None, "values": []}
    values: list[dict[str, Any]] = []
    content = _walk(node, _prefix(path), path[2] if len(path) > 2 else 0,
                    _ResourceModels(model, path[0] if path else -1), values)
    return {"content": content, "values": values}


def _prefix(path: LwM2MPath) -> str:
    return str(path) if path else ""


class _ResourceModels:
    """The model's resources of one object, looked up once per object, not per value."""

    __slots__ = ("known_object", "model", "object_id", "resources")

    def __init__(self, model: ModelRegistry, object_id: int) -> None:
        self.model = model
        self.object_id = -1
        self.resources: Mapping[int, ResourceModel] = {}
        self.known_object = False
        self.of(object_id)

    def of(self, object_id: int) -> _ResourceModels:
        if object_id != self.object_id:
            om = self.model.get(object_id)
            self.object_id = object_id
            self.resources = om.resources if om is not None else {}
            self.known_object = object_id in self.model
        return self


def _leaf(path: str, rid: int, rtype: ResourceType, value: Value, models: _ResourceModels
          ) -> dict[str, Any]:
    rm = models.resources.get(rid)
    item = {"path": path, "name": rm.name if rm else None, "type": rtype.value,
            "units": (rm.units or None) if rm else None, "value": json_scalar(value)}
    if rm is None and models.known_object:  # see lwm2m.unknown_resources
        item["unknown"] = True
    return item


def _walk(node: Node, path: str, rid: int, models: _ResourceModels,
          values: list[dict[str, Any]]) -> Any:
    """The JSON content of ``node`` (at ``path``; for a resource instance, of resource
    ``rid``); its values are appended to ``values`` in order."""
    if isinstance(node, SingleResource):
        values.append(_leaf(path, node.id, node.type, node.value, models))
        return json_scalar(node.value)
    if isinstance(node, ResourceInstance):
        values.append(_leaf(path, rid, node.type, node.value, models))
        return json_scalar(node.value)
    if isinstance(node, MultipleResource):
        content = {}
        for ri, value in node.instances.items():
            values.append(_leaf(f"{path}/{ri}", node.id, node.type, value, models))
            content[str(ri)] = json_scalar(value)
        return content
    if isinstance(node, ObjectInstance):
        return {str(r): _walk(resource, f"{path}/{r}", r, models, values)
                for r, resource in node.resources.items()}
    models.of(node.id)
    return {str(i): _walk(instance, f"{path}/{i}", rid, models, values)
            for i, instance in node.instances.items()}
