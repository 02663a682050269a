"""Known-answer tests on payloads recorded from Anjay and Wakaama (shared/vectors).

Every manifest entry is a test case; entries without a payload to decode are skipped with
the reason (error response code, empty body), never silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    Node,
    ObjectInstance,
    ResourceType,
    SingleResource,
    decode_composite,
    decode_node,
    decode_paths,
    decode_timestamped,
    encode_composite,
    encode_node,
    encode_paths,
    parse_write_attributes,
)
from aiolwm2m.lwm2m.formats import (
    decode_discover,
    decode_object_list,
    encode_discover,
    encode_object_list,
)

from ..conftest import VECTORS_DIR, load_manifests, need

CASES = load_manifests()
# Resources whose values the manifest README says changed between captures.
VOLATILE = {7, 8, 13}


def _id(case: tuple[str, dict[str, Any]]) -> str:
    return f"{case[0]}/{case[1]['name']}"


def _payload(client: str, entry: dict[str, Any]) -> bytes:
    data = (need(VECTORS_DIR) / client / entry["file"]).read_bytes()
    assert data.hex() == entry["payload_hex"], "payload file and manifest agree"
    return data


def _skip_reason(entry: dict[str, Any]) -> str | None:
    response = entry.get("response") or {}
    code = response.get("code")
    if entry.get("error"):
        return f"no response recorded (code {code}): {entry['error']}"
    if code is not None and not code.startswith("2."):
        return f"error response {code} has no payload to decode"
    return None


def _round_trip(fmt: int, path: LwM2MPath, node: Node, model: ModelRegistry) -> None:
    again = encode_node(fmt, path, node, model)
    assert decode_node(fmt, again, path, model) == node


SINGLE = [c for c in CASES if not c[1]["name"].startswith("read_composite")]


@pytest.mark.parametrize("case", SINGLE, ids=[_id(c) for c in SINGLE])
def test_vector(case: tuple[str, dict[str, Any]], model: ModelRegistry) -> None:
    client, entry = case
    reason = _skip_reason(entry)
    if reason:
        pytest.skip(reason)
    name = entry["name"]
    request = entry["request"]
    if name.startswith(("read_", "observe_", "discover_", "write_")):
        path = LwM2MPath.parse(request["path"])
    if name.startswith(("read_", "observe_")):
        fmt = entry["response"]["content_format"]
        node = decode_node(fmt, _payload(client, entry), path, model)
        _round_trip(fmt, path, node, model)
        if name.startswith("observe_"):
            assert isinstance(node, SingleResource) and node.type is ResourceType.TIME
            assert node.value.year >= 2026  # type: ignore[union-attr]
    elif name.startswith("discover_"):
        payload = _payload(client, entry)
        links = decode_discover(payload)
        assert encode_discover(links) == payload
        assert all(link.path.starts_with(path) for link in links)
        if client.startswith("anjay") and name == "discover_3_0":
            assert {str(link.path) for link in links if link.dim == 1} >= {
                "/3/0/6",
                "/3/0/7",
                "/3/0/22",
            }
    elif name.startswith(("register_", "update_")):
        payload = _payload(client, entry)
        if not payload:
            pytest.skip("Update without an object list (query parameters only)")
        objects = decode_object_list(payload)
        assert encode_object_list(objects) == payload
        assert objects.object(3) is not None and 0 in objects.object(3).instances  # type: ignore[union-attr]
    elif name.startswith("send_"):
        fmt = request["content_format"]
        groups = decode_timestamped(fmt, _payload(client, entry), LwM2MPath(), model)
        assert len(groups) == 1
        nodes = groups[0].nodes
        assert set(nodes) == {LwM2MPath(3, 0, 0), LwM2MPath(3, 0, 9)}
        assert nodes[LwM2MPath(3, 0, 0)].type is ResourceType.STRING  # type: ignore[union-attr]
        if client.startswith("anjay"):
            assert groups[0].timestamp is not None and groups[0].timestamp > 1.7e9
    elif name.startswith("write_attributes"):
        update = parse_write_attributes(request["query"])
        assert update.set.pmin == 1 and update.set.pmax == 2
    elif name.startswith("write_"):
        body = bytes.fromhex(request["payload_hex"])
        node = decode_node(request["content_format"], body, path, model)
        expected = 120 if request["content_format"] == ContentFormat.TLV else 90
        assert node == SingleResource(1, ResourceType.INTEGER, expected)
        _round_trip(request["content_format"], path, node, model)
    elif name.startswith("deregister"):
        pytest.skip("De-register carries no payload")
    else:  # pragma: no cover
        pytest.fail(f"no check for vector {name}")


COMPOSITE = [c for c in CASES if c[1]["name"].startswith("read_composite")]


@pytest.mark.parametrize("case", COMPOSITE, ids=[_id(c) for c in COMPOSITE])
def test_composite_vector(case: tuple[str, dict[str, Any]], model: ModelRegistry) -> None:
    client, entry = case
    request = entry["request"]
    fmt = request["content_format"]
    paths = decode_paths(fmt, bytes.fromhex(request["payload_hex"]))
    assert encode_paths(fmt, paths).hex() == request["payload_hex"]
    reason = _skip_reason(entry)
    if reason:
        pytest.skip(reason)
    nodes = decode_composite(
        entry["response"]["content_format"], _payload(client, entry), paths, model
    )
    assert nodes[LwM2MPath(3, 0, 0)] == SingleResource(
        0, ResourceType.STRING, _manufacturer(client, model)
    )
    assert isinstance(nodes[LwM2MPath(3, 0, 9)], SingleResource)
    if "srv1" in entry["name"]:
        assert nodes[LwM2MPath(1, 1, 1)] == SingleResource(1, ResourceType.INTEGER, 60)
    else:
        assert LwM2MPath(1, 0, 1) not in nodes  # the client left the missing instance out
    again = encode_composite(fmt, nodes)
    assert decode_composite(fmt, again, paths, model) == nodes


def _entries(client: str) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for c, entry in CASES if c == client}


def _manufacturer(client: str, model: ModelRegistry) -> str:
    entry = _entries(client)["read_3_0_0_text"]
    node = decode_node(ContentFormat.TEXT, _payload(client, entry), LwM2MPath(3, 0, 0), model)
    return node.value  # type: ignore[union-attr,return-value]


CLIENTS = sorted({c for c, _ in CASES})


def _stable(instance: ObjectInstance) -> dict[int, object]:
    out: dict[int, object] = {}
    for rid, resource in instance.resources.items():
        if rid in VOLATILE:
            out[rid] = (type(resource), resource.type)
        else:
            out[rid] = resource
    return out


@pytest.mark.parametrize("client", CLIENTS)
def test_device_read_agrees_across_formats(client: str, model: ModelRegistry) -> None:
    entries = _entries(client)
    decoded: dict[str, ObjectInstance] = {}
    for name in (
        "read_3_0_tlv",
        "read_3_0_senml_json",
        "read_3_0_senml_cbor",
        "read_3_0_lwm2m_json",
        "read_3_0_lwm2m_cbor",
        "read_3_0_default",
    ):
        entry = entries[name]
        if _skip_reason(entry):
            continue
        node = decode_node(
            entry["response"]["content_format"], _payload(client, entry), LwM2MPath(3, 0), model
        )
        assert isinstance(node, ObjectInstance)
        decoded[name] = node
    assert len(decoded) >= 3, "at least TLV, SenML JSON and LwM2M JSON were captured"
    reference = _stable(decoded["read_3_0_tlv"])
    for name, node in decoded.items():
        assert _stable(node) == reference, name
    current_time = decoded["read_3_0_tlv"].resources[13]
    assert isinstance(current_time, SingleResource)
    assert isinstance(current_time.value, dt.datetime) and current_time.value.tzinfo is not None
    # /3 and /3/0/7 reads hold the same instance / resource.
    obj = decode_node(
        ContentFormat.TLV, _payload(client, entries["read_3_tlv"]), LwM2MPath(3), model
    )
    assert _stable(obj.instances[0]) == reference  # type: ignore[union-attr]
    for name in ("read_3_0_7_tlv", "read_3_0_7_senml_json", "read_3_0_7_senml_cbor"):
        entry = entries[name]
        if _skip_reason(entry):
            continue
        voltage = decode_node(
            entry["response"]["content_format"], _payload(client, entry), LwM2MPath(3, 0, 7), model
        )
        assert isinstance(voltage, MultipleResource) and voltage.type is ResourceType.INTEGER
        assert set(voltage.instances) == set(decoded["read_3_0_tlv"].resources[7].instances)  # type: ignore[union-attr]
    # The value written is the value read back.
    after = next(e for n, e in entries.items() if n.endswith("_after_writes"))
    lifetime = decode_node(
        0, _payload(client, after), LwM2MPath.parse(after["request"]["path"]), model
    )
    assert lifetime == SingleResource(1, ResourceType.INTEGER, 90)
