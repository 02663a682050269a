"""Content-format names the REST API accepts, and JSON renderings of LwM2M values."""

from __future__ import annotations

from typing import Any

from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ModelRegistry
from aiolwm2m.lwm2m.bounded_int import MAX_UINT16, parse_decimal
from aiolwm2m.lwm2m.errors import shown
from aiolwm2m.lwm2m.nodes import Node, iter_leaves

from .json_values import json_scalar, node_content

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


def format_name(fmt: int | None) -> str | None:
    if fmt is None:
        return None
    for name, number in FORMAT_NAMES.items():
        if number == fmt:
            return name
    return str(fmt)


def leaf_values(path: LwM2MPath, node: Node, model: ModelRegistry) -> list[dict[str, Any]]:
    """Every value under ``node`` with its path, resource name, type and units (Opaque
    values as ``{"base64": ...}``, see :mod:`.json_values`)."""
    out: list[dict[str, Any]] = []
    for leaf_path, rtype, value in iter_leaves(path, node):
        rm = model.resource(leaf_path[0], leaf_path[2]) if len(leaf_path) >= 3 else None
        item = {"path": str(leaf_path), "name": rm.name if rm else None,
                "type": rtype.value, "units": (rm.units or None) if rm else None,
                "value": json_scalar(value)}
        if rm is None and leaf_path[0] in model:  # see lwm2m.unknown_resources
            item["unknown"] = True
        out.append(item)
    return out


def node_json(path: LwM2MPath, node: Node | None, model: ModelRegistry) -> dict[str, Any]:
    if node is None:
        return {"content": None, "values": []}
    return {"content": node_content(node), "values": leaf_values(path, node, model)}
