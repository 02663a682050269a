"""From responses, notifications and Sends to samples (``aiolwm2m/history/recorder.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiolwm2m.history.memory import MemoryValueStore
from aiolwm2m.history.recorder import ValueRecorder
from aiolwm2m.history.samples import node_values
from aiolwm2m.lwm2m import LwM2MPath, ModelRegistry
from aiolwm2m.lwm2m.node_builder import build_node
from aiolwm2m.lwm2m.nodes import (
    LwM2MObject,
    MultipleResource,
    ObjectInstance,
    ResourceInstance,
    SingleResource,
    TimestampedNodes,
)
from aiolwm2m.lwm2m.operations import (
    CompositeResponse,
    ObserveResponse,
    ReadCompositeRequest,
    ReadRequest,
    ReadResponse,
)
from aiolwm2m.lwm2m.values import ObjectLink, ResourceType
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.store.records import Observation, Registration

P = LwM2MPath.parse
T = ResourceType
NOW = 1_800_000_000.0
CONTENT = 69  # 2.05
NOT_FOUND = 132  # 4.04


def test_node_values() -> None:
    instance = ObjectInstance.from_resources(0, [
        SingleResource(0, T.STRING, "x"), MultipleResource(7, T.INTEGER, {0: 1, 3: 4}),
        SingleResource(13, T.TIME, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        SingleResource(22, T.OBJLNK, ObjectLink(3, 0)), SingleResource(30, T.OPAQUE, b"\x01"),
        SingleResource(31, T.BOOLEAN, True)])
    assert node_values(P("/3/0"), instance) == [
        ("/3/0/0", "String", "x"), ("/3/0/7/0", "Integer", 1), ("/3/0/7/3", "Integer", 4),
        ("/3/0/13", "Time", 1767225600), ("/3/0/22", "Objlnk", "3:0"),
        ("/3/0/30", "Opaque", b"\x01"), ("/3/0/31", "Boolean", True)]
    obj = LwM2MObject(3303, {0: ObjectInstance.from_resources(0, [
        SingleResource(5700, T.FLOAT, 1.5)]), 1: ObjectInstance.from_resources(1, [
            SingleResource(5700, T.FLOAT, 2.5)])})
    assert node_values(P("/3303"), obj) == [("/3303/0/5700", "Float", 1.5),
                                            ("/3303/1/5700", "Float", 2.5)]
    assert node_values(P("/3/0/7"), MultipleResource(7, T.INTEGER, {2: 9})) == [
        ("/3/0/7/2", "Integer", 9)]
    assert node_values(P("/3/0/7/2"), ResourceInstance(2, T.INTEGER, 9)) == [
        ("/3/0/7/2", "Integer", 9)]


REG = Registration(id="r1", endpoint="dev-1", address=("::1", 5683), lifetime=60)


def recorded(store: MemoryValueStore) -> list[tuple[str, float, Any, str]]:
    return [(s.path, s.time, s.value, s.source)
            for s in store._all]  # every sample, in the order recorded


def test_responses_notifications_and_sends() -> None:
    store = MemoryValueStore()
    recorder = ValueRecorder(store, lambda: NOW, max_value_bytes=8)
    model = ModelRegistry.with_core_objects()
    node = build_node(model, P("/3/0"), {"9": 80, "1": "a-model-name-too-long"})
    recorder.response(REG, ReadRequest(P("/3/0")), ReadResponse(CONTENT, content=node,
                                                                path=P("/3/0")))
    assert recorded(store) == [("/3/0/9", NOW, 80, "read")]
    assert recorder.skipped == 1  # the long string
    # A failure records nothing.
    recorder.response(REG, ReadRequest(P("/3/0/9")), ReadResponse(NOT_FOUND, path=P("/3/0/9")))
    composite = {P("/3/0/9"): SingleResource(9, T.INTEGER, 81),
                 P("/3303/0/5700"): SingleResource(5700, T.FLOAT, 20.5)}
    recorder.response(REG, ReadCompositeRequest((P("/3/0/9"), P("/3303/0/5700"))),
                      CompositeResponse(CONTENT, content=composite))
    observed = ObserveResponse(CONTENT, composite=composite, token=b"t")
    recorder.event(NotificationReceived(REG, Observation(
        token=b"t", registration_id="r1", endpoint="dev-1",
        paths=("/3/0/9", "/3303/0/5700"), composite=True, content_format=None,
        created_at=0.0), observed))
    # Send: a relative time is the device's "so long ago"; an absolute one is kept.
    recorder.event(SendReceived(REG, (
        TimestampedNodes(-10.0, {P("/3/0/9"): SingleResource(9, T.INTEGER, 82)}),
        TimestampedNodes(1_700_000_000.0, {P("/3/0/9"): SingleResource(9, T.INTEGER, 83)}),
        TimestampedNodes(None, {P("/3/0/9"): SingleResource(9, T.INTEGER, 84)}))))
    assert recorded(store)[1:] == [
        ("/3/0/9", NOW, 81, "read"), ("/3303/0/5700", NOW, 20.5, "read"),
        ("/3/0/9", NOW, 81, "observe"), ("/3303/0/5700", NOW, 20.5, "observe"),
        ("/3/0/9", NOW - 10, 82, "send"), ("/3/0/9", 1_700_000_000.0, 83, "send"),
        ("/3/0/9", NOW, 84, "send")]
