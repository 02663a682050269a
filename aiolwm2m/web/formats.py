"""Content-format names the REST API accepts, and JSON renderings of LwM2M values."""

from __future__ import annotations

from typing import Any

from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ModelRegistry
from aiolwm2m.lwm2m.node_builder import node_to_plain, plain_value
from aiolwm2m.lwm2m.nodes import Node, iter_leaves

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
        return text
    key = text.strip().lower()
    if key in FORMAT_NAMES:
        return FORMAT_NAMES[key]
    if key.isdigit():
        return int(key)
    raise ValueError(f"unknown content format {text!r}; use a number or one of "
                     f"{', '.join(sorted(FORMAT_NAMES))}")


def format_name(fmt: int | None) -> str | None:
    if fmt is None:
        return None
    for name, number in FORMAT_NAMES.items():
        if number == fmt:
            return name
    return str(fmt)


def leaf_values(path: LwM2MPath, node: Node, model: ModelRegistry) -> list[dict[str, Any]]:
    """Every value under ``node`` with its path, resource name, type and units."""
    out: list[dict[str, Any]] = []
    for leaf_path, rtype, value in iter_leaves(path, node):
        rm = model.resource(leaf_path[0], leaf_path[2]) if len(leaf_path) >= 3 else None
        out.append({"path": str(leaf_path), "name": rm.name if rm else None,
                    "type": rtype.value, "units": (rm.units or None) if rm else None,
                    "value": plain_value(value)})
    return out


def node_json(path: LwM2MPath, node: Node | None, model: ModelRegistry) -> dict[str, Any]:
    if node is None:
        return {"content": None, "values": []}
    return {"content": node_to_plain(node), "values": leaf_values(path, node, model)}
