"""The codecs' fast paths against the general code they stand in for.

Instance reads and writes take fast paths (TLV, SenML JSON and CBOR, LwM2M CBOR), some of them
through caches of known TLV layouts and LwM2M CBOR shapes, and decoded instances build their
resource nodes on first read. Whatever the input, the result must be what the general code
gives: the same node, the same bytes or the same error.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any
from unittest import mock

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiolwm2m.lwm2m import (
    CodecError,
    ContentFormat,
    LwM2MPath,
    ModelRegistry,
    MultipleResource,
    ObjectInstance,
    ObjectLink,
    ResourceType,
    SingleResource,
    decode_node,
    encode_node,
)
from aiolwm2m.lwm2m.formats import cbor_support, lwm2m_cbor, plans, senml, tlv
from aiolwm2m.lwm2m.nodes import instance_from_values

from .test_properties import OBJECT_ID, VALUES, _registry_for, instances

CF = ContentFormat
T = ResourceType
FORMATS = [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def general_code_only() -> Iterator[None]:
    """Every fast path off: what the codecs did before they had them."""

    def failing_loads(payload: bytes) -> Any:
        raise ValueError("fast load disabled")

    with (
        mock.patch.object(plans, "object_plan", lambda model, object_id: None),
        mock.patch.object(tlv, "_instance_body_plain", lambda instance: None),
        mock.patch.object(lwm2m_cbor, "_instance_map", lambda instance: None),
        mock.patch.object(lwm2m_cbor, "_instance_fast", lambda document, path, model: None),
        mock.patch.object(senml, "_instance_json", lambda instance, base: None),
        mock.patch.object(senml, "_instance_cbor", lambda instance, base: None),
        mock.patch.object(senml, "_decode_json", lambda text: senml._MISSING),
        mock.patch.object(cbor_support, "_loads", failing_loads),
    ):
        yield


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        result = call()
    except CodecError as exc:
        return ("error", type(exc), str(exc))
    # repr shows the order of resources, which equality ignores.
    return ("ok", result, repr(result))


def both(call: Callable[[], Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fast = outcome(call)
    with general_code_only():
        general = outcome(call)
    return fast, general


@SETTINGS
@given(instances(list(VALUES)), st.sampled_from(FORMATS))
def test_instances_encode_and_decode_as_the_general_code_does(
    instance: ObjectInstance, fmt: int
) -> None:
    model = _registry_for(instance)
    path = LwM2MPath(OBJECT_ID, instance.id)
    fast_bytes, general_bytes = both(lambda: encode_node(fmt, path, instance, model))
    assert fast_bytes == general_bytes
    payload = fast_bytes[1]
    for _ in range(2):  # the second time through the recorded layouts and shapes
        fast, general = both(lambda: decode_node(fmt, payload, path, model))
        assert fast == general
        assert fast[1] == instance


@SETTINGS
@given(instances(list(VALUES)), st.sampled_from(FORMATS), st.data())
def test_altered_payloads_decode_as_the_general_code_does(
    instance: ObjectInstance, fmt: int, data: st.DataObject
) -> None:
    model = _registry_for(instance)
    path = LwM2MPath(OBJECT_ID, instance.id)
    payload = bytearray(encode_node(fmt, path, instance, model))
    decode_node(fmt, bytes(payload), path, model)  # records the layout or shape
    for _ in range(data.draw(st.integers(1, 3))):
        if payload and data.draw(st.booleans()):
            # Same size: a recorded TLV layout applies, with other bytes where it expects them.
            position = data.draw(st.integers(0, len(payload) - 1))
            payload[position] = data.draw(st.integers(0, 255))
        else:
            cut = data.draw(st.integers(0, len(payload)))
            payload[cut:cut] = data.draw(st.binary(max_size=3))
    altered = bytes(payload)
    fast, general = both(lambda: decode_node(fmt, altered, path, model))
    assert fast == general


def _device() -> ObjectInstance:
    return ObjectInstance.from_resources(
        0,
        [
            SingleResource(0, T.STRING, "Open Mobile Alliance"),
            MultipleResource(6, T.INTEGER, {0: 1, 1: 5}),
            SingleResource(9, T.INTEGER, 100),
            SingleResource(13, T.TIME, 1367491215),
            MultipleResource(22, T.OBJLNK, {0: ObjectLink(33606, 0)}),
        ],
    )


DEVICE_PATH = LwM2MPath(3, 0)


_GOOD_BODY: dict[Any, Any] = {
    0: "Open Mobile Alliance",
    6: {0: 1, 1: 5},
    9: 100,
    13: 1367491215,
    22: {0: "33606:0"},
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {9: 2**63},
        {9: -(2**63) - 1},
        {9: 1.0},
        {9: True},
        {9: "100"},
        {13: -(10**12)},
        {13: 1.5},
        {13: dt.datetime(2013, 5, 2, tzinfo=dt.UTC)},
        {6: {0: 1, 1.0: 5}},
        {6: {0: 1, 1: 2**64 - 1}},
        {6: {0: 1, 70000: 5}},
        {6: {}},
        {6: [1, 5]},
        {6: 1},
        {22: {0: "1:99999"}},
        {22: {0: "33606:0", 1: "1:2"}},
        {0: b"x"},
        {0: {0: "x"}},
    ],
)
def test_lwm2m_cbor_bodies_of_a_known_shape_decode_as_the_general_code_does(
    changes: dict[int, Any],
) -> None:
    model = ModelRegistry.with_core_objects()
    good = cbor2.dumps({(3, 0): _GOOD_BODY})
    assert decode_node(CF.LWM2M_CBOR, good, DEVICE_PATH, model) == _device()
    payload = cbor2.dumps({(3, 0): {**_GOOD_BODY, **changes}})
    fast, general = both(lambda: decode_node(CF.LWM2M_CBOR, payload, DEVICE_PATH, model))
    assert fast == general


@pytest.mark.parametrize("fmt", [CF.TLV, CF.LWM2M_CBOR])
def test_a_known_layout_is_not_taken_for_another_path(fmt: int) -> None:
    model = ModelRegistry.with_core_objects()
    payload = encode_node(fmt, DEVICE_PATH, _device())
    decode_node(fmt, payload, DEVICE_PATH, model)
    other = LwM2MPath(3, 1)
    fast, general = both(lambda: decode_node(fmt, payload, other, model))
    assert fast == general


@pytest.mark.parametrize(
    "replacement",
    [
        b"\x19\x00\x64",  # 100 with a two-byte argument: other structural bytes
        b"\x39\x00\x63",  # -100
        b"\x1b\x80\x00\x00\x00\x00\x00\x00\x00",  # 2**63: beyond Integer
        b"\x3b\x80\x00\x00\x00\x00\x00\x00\x00",  # -(2**63) - 1
        b"\x3b\x7f\xff\xff\xff\xff\xff\xff\xff",  # -(2**63)
        b"\xfb\x40\x59\x00\x00\x00\x00\x00\x00",  # 100.0
        b"\xf5",
        b"\x63abc",
    ],
)
def test_lwm2m_cbor_items_of_known_layouts_decode_as_the_general_code_does(
    replacement: bytes,
) -> None:
    model = ModelRegistry.with_core_objects()
    nine = {**_GOOD_BODY, 9: 0}  # resource 9 written as the placeholder byte 0x00
    template = cbor2.dumps({(3, 0): nine})
    marker = b"\x09\x00"
    assert template.count(marker) == 1
    payload = template.replace(marker, b"\x09" + replacement)
    # Record a layout of this very size and structure with another value first, when there is
    # one, so that the payload is read through the layout.
    for probe in (payload, payload):
        fast, general = both(lambda: decode_node(CF.LWM2M_CBOR, probe, DEVICE_PATH, model))  # noqa: B023
        assert fast == general


@pytest.mark.parametrize(
    "keys",
    [
        (0.0, 6, 9, 13, 22),  # a float key equal to a resource id
        (0, 6, True, 13, 22),
        (0, 6, 9, 13, 9999),
        (0, 6, 9, 13, "22"),
    ],
)
def test_lwm2m_cbor_odd_keys_decode_as_the_general_code_does(keys: tuple[Any, ...]) -> None:
    model = ModelRegistry.with_core_objects()
    decode_node(CF.LWM2M_CBOR, cbor2.dumps({(3, 0): _GOOD_BODY}), DEVICE_PATH, model)
    body = dict(zip(keys, _GOOD_BODY.values(), strict=True))
    payload = cbor2.dumps({(3, 0): body})
    fast, general = both(lambda: decode_node(CF.LWM2M_CBOR, payload, DEVICE_PATH, model))
    assert fast == general


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Open Mobile Alliance", b"Open Mobile Allianc\xff"),  # not UTF-8
        (b"\xc1\x09\x64", b"\xc1\x09\x9c"),  # another value, same width
        (b"\xc1\x09\x64", b"\xc1\x0a\x64"),  # another resource id
        (b"\xc1\x09\x64", b"\xc1\x07\x64"),  # a multiple resource as a single one
        (b"\xc4\x0d\x51\x82\x42\x8f", b"\xc4\x0d\x7f\xff\xff\xff"),
    ],
)
def test_tlv_payloads_of_a_known_size_decode_as_the_general_code_does(
    old: bytes, new: bytes
) -> None:
    model = ModelRegistry.with_core_objects()
    payload = encode_node(CF.TLV, DEVICE_PATH, _device())
    decode_node(CF.TLV, payload, DEVICE_PATH, model)
    assert old in payload
    altered = payload.replace(old, new)
    fast, general = both(lambda: decode_node(CF.TLV, altered, DEVICE_PATH, model))
    assert fast == general


def test_tlv_booleans_of_a_known_layout_are_checked() -> None:
    instance = ObjectInstance.from_resources(0, [SingleResource(1, T.BOOLEAN, True)])
    model = _registry_for(instance)
    path = LwM2MPath(OBJECT_ID, 0)
    payload = encode_node(CF.TLV, path, instance, model)
    assert decode_node(CF.TLV, payload, path, model) == instance
    for byte in (0, 1, 2, 255):
        altered = payload[:-1] + bytes((byte,))
        fast, general = both(lambda: decode_node(CF.TLV, altered, path, model))  # noqa: B023
        assert fast == general


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 1.5, "\ud800", 2**70, True],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_values_encode_as_the_general_code_does(value: object, fmt: int) -> None:
    rtype = {float: T.FLOAT, str: T.STRING, int: T.INTEGER, bool: T.INTEGER}[type(value)]
    odd = tuple.__new__(SingleResource, (1, rtype, value))  # past the constructor's checks
    instance = ObjectInstance.from_resources(0, [SingleResource(0, T.STRING, "x"), odd])
    path = LwM2MPath(OBJECT_ID, 0)

    def encode() -> tuple[Any, ...]:
        try:
            return ("ok", encode_node(fmt, path, instance))
        except Exception as exc:  # the general code lets some non-codec errors through
            return ("error", type(exc), str(exc))

    fast = encode()
    with general_code_only():
        assert encode() == fast


def test_cbor_load_rejects_trailing_bytes_even_after_a_break() -> None:
    item = cbor2.dumps({1: 2})
    for payload in (item + b"\xff", item + b"\xff\x00", item + b"\x00", b"\xff"):
        fast, general = both(lambda: cbor_support.load_one(CF.CBOR, payload))  # noqa: B023
        assert fast == general and fast[0] == "error"


# --- instances whose nodes are built on first read ----------------------------------------------
def _decoded() -> ObjectInstance:
    model = ModelRegistry.with_core_objects()
    payload = encode_node(CF.LWM2M_CBOR, DEVICE_PATH, _device())
    node = decode_node(CF.LWM2M_CBOR, payload, DEVICE_PATH, model)
    assert isinstance(node, ObjectInstance)
    return node


def _is_built(instance: ObjectInstance) -> bool:
    import gc

    (store,) = gc.get_referents(instance.resources)
    return type(store).__name__ != "_PendingResourceDict"


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r[0],
        lambda r: r.get(0),
        lambda r: list(r.values()),
        lambda r: list(r.items()),
        lambda r: r.copy(),
        lambda r: dict(r),
        lambda r: {**r},
        lambda r: r == _device().resources,
        lambda r: r != _device().resources,
        lambda r: _device().resources == r,
        lambda r: repr(r),
        lambda r: str(r),
        lambda r: r | {},
        lambda r: {} | r,
        lambda r: frozenset(r.items()),
    ],
)
def test_every_read_of_values_builds_the_nodes(read: Callable[[Any], Any]) -> None:
    instance = _decoded()
    assert not _is_built(instance)
    read(instance.resources)
    assert _is_built(instance)
    assert instance == _device() and _device() == instance


def test_reading_keys_builds_nothing_and_results_match_an_eager_instance() -> None:
    instance = _decoded()
    expected = _device()
    assert len(instance.resources) == 5 and 13 in instance.resources and 1 not in instance.resources
    assert list(instance.resources) == list(expected.resources)
    assert list(reversed(instance.resources)) == list(reversed(expected.resources))
    assert sorted(instance.resources.keys()) == [0, 6, 9, 13, 22]
    assert not _is_built(instance)
    assert hash(instance) == hash(expected)
    assert repr(instance) == repr(expected)
    assert type(instance.resources) is MappingProxyType
    assert type(instance.resources[6]) is MultipleResource
    assert type(instance.resources[6].instances) is MappingProxyType
    assert instance.resources[13].value == dt.datetime(2013, 5, 2, 10, 40, 15, tzinfo=dt.UTC)
    with pytest.raises(TypeError):
        instance.resources[0] = SingleResource(0, T.STRING, "y")  # type: ignore[index]


def test_two_lazy_instances_compare_by_content() -> None:
    first, second = _decoded(), _decoded()
    assert first == second
    assert not first != second  # noqa: SIM202 - __ne__ is overridden too
    assert first.resources == second.resources


def test_concurrent_first_reads_build_once_consistently() -> None:
    instance = instance_from_values(
        0, {rid: f"v{rid}" for rid in range(2000)}, {rid: T.STRING for rid in range(2000)}
    )
    results: list[list[Any]] = []

    def read() -> None:
        results.append(list(instance.resources.values()))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [SingleResource(rid, T.STRING, f"v{rid}") for rid in range(2000)]
    assert all(result == expected for result in results)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_comparisons_above_do_compare_two_paths(fmt: int) -> None:
    model = ModelRegistry.with_core_objects()
    payload = encode_node(fmt, DEVICE_PATH, _device(), model)
    for _ in range(2):
        fast = decode_node(fmt, payload, DEVICE_PATH, model)
        assert isinstance(fast, ObjectInstance) and not _is_built(fast)
    with general_code_only():
        general = decode_node(fmt, payload, DEVICE_PATH, model)
        assert isinstance(general, ObjectInstance) and _is_built(general)
        assert encode_node(fmt, DEVICE_PATH, _device(), model) == payload


def test_layouts_are_recorded_less_and_less_often_while_none_fits() -> None:
    cache: plans.LayoutCache[str] = plans.LayoutCache()
    recorded = [n for n in range(1, 5000) if cache.should_record()]
    assert recorded == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]
    cache.misses = 0  # what a hit does
    assert cache.should_record()
