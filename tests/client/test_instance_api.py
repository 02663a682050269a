"""The declarative object API: types from the model, defaults, readers, writers, executes."""

from __future__ import annotations

import datetime as dt

import pytest

from aiolwm2m.client import Instance, ObjectTree, execute, resource
from aiolwm2m.client.objects import DeviceInstance, ServerInstance, TemperatureInstance
from aiolwm2m.coap.errors import BadRequest, MethodNotAllowed, NotFound
from aiolwm2m.lwm2m import LwM2MPath, ResourceType, SingleResource
from aiolwm2m.lwm2m.errors import InvalidValue
from aiolwm2m.lwm2m.nodes import MultipleResource, ObjectInstance, ResourceInstance


class Counter(Instance, object_id=3300):
    value = resource(5700, default=0.0)
    units = resource(5701)
    app = resource(5750, default="")
    resets = 0

    @value.reader
    def _value(self) -> float:
        return self.base * 2

    @app.on_write
    def _app(self, text: str) -> None:
        if text == "forbidden":
            raise ValueError("not this one")

    @execute(5605)
    def reset(self, arguments: str) -> None:
        type(self).resets += 1
        self.base = 0.0

    def __init__(self, iid: int = 0) -> None:
        super().__init__(iid)
        self.base = 1.5


class Custom(Instance, object_id=32000):
    level = resource(0, type=ResourceType.INTEGER, operations="RW", default=3)
    tags = resource(1, type=ResourceType.STRING, multiple=True, operations="R",
                    default={0: "a"})


def test_types_and_operations_come_from_the_model() -> None:
    rm = Counter.fields[5700].resolved
    assert rm.type is ResourceType.FLOAT and rm.readable and not rm.writable
    assert Counter.object_model.id == 3300 and Counter.object_model.version == "1.1"
    t = TemperatureInstance(0)
    with pytest.raises(InvalidValue):
        t.sensor_value = "hot"  # type: ignore[assignment]
    t.sensor_value = 21  # ints are accepted and stored as float
    assert t.sensor_value == 21.0 and isinstance(t.sensor_value, float)


def test_reader_and_defaults() -> None:
    c = Counter(0)
    assert c.value == 3.0
    assert c.read_resource(5700) == SingleResource(5700, ResourceType.FLOAT, 3.0)
    assert c.units is None and 5701 not in c.present()
    assert 5605 in c.present()


def test_objects_the_model_lacks_declare_their_types() -> None:
    c = Custom(2)
    assert Custom.object_model.id == 32000 and Custom.object_model.multiple
    assert c.read_resource(1) == MultipleResource(1, ResourceType.STRING, {0: "a"})
    with pytest.raises(TypeError, match="give it a type"):
        class Broken(Instance, object_id=32001):
            x = resource(0)


def test_tree_write_rules() -> None:
    tree = ObjectTree()
    c = tree.add(Counter(0))
    assert isinstance(c, Counter)
    with pytest.raises(MethodNotAllowed):
        tree.write(LwM2MPath(3300, 0, 5700), SingleResource(5700, ResourceType.FLOAT, 1.0),
                   replace=True)
    with pytest.raises(BadRequest, match="not this one"):
        tree.write(LwM2MPath(3300, 0, 5750),
                   SingleResource(5750, ResourceType.STRING, "forbidden"), replace=True)
    tree.write(LwM2MPath(3300, 0, 5750), SingleResource(5750, ResourceType.STRING, "ok"),
               replace=True)
    assert c.get(5750) == "ok"
    with pytest.raises(NotFound):
        tree.read(LwM2MPath(3300, 1))
    with pytest.raises(MethodNotAllowed):
        tree.read(LwM2MPath(3300, 0, 5605))  # executable


def test_replace_resets_omitted_writable_resources() -> None:
    tree = ObjectTree()
    srv = tree.add(ServerInstance(0, short_server_id=1, lifetime=60, default_min_period=5))
    tree.write(LwM2MPath(1, 0), ObjectInstance(0, {1: SingleResource(1, ResourceType.INTEGER,
                                                                       120)}), replace=True)
    assert srv.get(1) == 120 and srv.get(2) is None and srv.get(7) == "U"
    tree.write(LwM2MPath(1, 0), ObjectInstance(0, {2: SingleResource(2, ResourceType.INTEGER,
                                                                       9)}), replace=False)
    assert srv.get(1) == 120 and srv.get(2) == 9


def test_resource_instances_and_partial_multiple_writes() -> None:
    tree = ObjectTree()
    dev = tree.add(DeviceInstance(0))
    assert isinstance(dev, DeviceInstance)
    dev.add_error(4)
    dev.add_error(7)
    assert sorted(dev.get(11).values()) == [4, 7]
    assert tree.read(LwM2MPath(3, 0, 11, 1)) == ResourceInstance(1, ResourceType.INTEGER, 7)
    with pytest.raises(MethodNotAllowed):  # Error Code is read-only
        tree.write(LwM2MPath(3, 0, 11, 0), ResourceInstance(0, ResourceType.INTEGER, 1),
                   replace=True)


async def test_executes_and_time() -> None:
    tree = ObjectTree()
    c = tree.add(Counter(0))
    before = Counter.resets  # a class attribute: the test runs once per event loop
    await c.execute_resource(5605, "")
    assert Counter.resets == before + 1 and c.get(5700) == 0.0
    dev = tree.add(DeviceInstance(0))
    now = dev.get(13)
    assert isinstance(now, dt.datetime) and now.tzinfo is not None
    later = now + dt.timedelta(hours=1)
    tree.write(LwM2MPath(3, 0, 13), SingleResource(13, ResourceType.TIME, later), replace=True)
    assert abs((dev.get(13) - later).total_seconds()) <= 1


def test_change_listener_sees_paths() -> None:
    tree = ObjectTree()
    seen: list[LwM2MPath] = []
    tree.value_listeners.append(seen.append)
    t = tree.add(TemperatureInstance(0))
    assert isinstance(t, TemperatureInstance)
    t.measure(30.5)
    assert LwM2MPath(3303, 0, 5700) in seen and LwM2MPath(3303, 0, 5602) in seen
    assert t.get(5601) == 30.5 and t.get(5602) == 30.5
