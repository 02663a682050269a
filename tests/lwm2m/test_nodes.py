from __future__ import annotations

import pytest

from aiolwm2m.lwm2m import (
    InvalidValue,
    LwM2MObject,
    LwM2MPath,
    MultipleResource,
    ObjectInstance,
    ResourceInstance,
    ResourceType,
    SingleResource,
    TimestampedNodes,
)
from aiolwm2m.lwm2m.nodes import iter_leaves, node_matches_path

T = ResourceType


def test_structural_equality_includes_the_class() -> None:
    single = SingleResource(1, T.INTEGER, 5)
    assert single == SingleResource(1, T.INTEGER, 5)
    assert hash(single) == hash(SingleResource(1, T.INTEGER, 5))
    assert single != ResourceInstance(1, T.INTEGER, 5)
    assert single != (1, T.INTEGER, 5)
    assert single != SingleResource(1, T.INTEGER, 6)


def test_containers_are_read_only_and_compare_by_content() -> None:
    multi = MultipleResource(7, T.INTEGER, {1: 2, 0: 1})
    assert multi == MultipleResource(7, T.INTEGER, {0: 1, 1: 2})
    with pytest.raises(TypeError):
        multi.instances[3] = 4  # type: ignore[index]
    instance = ObjectInstance.from_resources(0, [multi, SingleResource(0, T.STRING, "x")])
    assert instance == ObjectInstance(0, {0: SingleResource(0, T.STRING, "x"), 7: multi})
    assert hash(instance) == hash(ObjectInstance(0, dict(instance.resources)))
    obj = LwM2MObject.from_instances(3, [instance])
    assert obj.instances[0] is instance
    with pytest.raises(AttributeError):
        obj.id = 4  # type: ignore[misc]


def test_constructors_validate() -> None:
    with pytest.raises(InvalidValue, match="expected int"):
        SingleResource(1, T.INTEGER, "5")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="resource instance id -1"):
        MultipleResource(1, T.INTEGER, {-1: 5})
    with pytest.raises(InvalidValue, match="keyed 2 has id 1"):
        ObjectInstance(0, {2: SingleResource(1, T.INTEGER, 5)})
    with pytest.raises(InvalidValue, match="object instance id 65535"):
        ObjectInstance(65535, {})
    with pytest.raises(InvalidValue, match="not an ObjectInstance"):
        LwM2MObject(3, {0: SingleResource(0, T.INTEGER, 1)})  # type: ignore[dict-item]


def test_iter_leaves_and_path_match() -> None:
    instance = ObjectInstance.from_resources(
        0, [SingleResource(0, T.STRING, "x"), MultipleResource(7, T.INTEGER, {0: 1, 1: 2})]
    )
    leaves = list(iter_leaves(LwM2MPath(3, 0), instance))
    assert [str(p) for p, _, _ in leaves] == ["/3/0/0", "/3/0/7/0", "/3/0/7/1"]
    assert node_matches_path(LwM2MPath(3, 0), instance) is None
    assert "does not match" in (node_matches_path(LwM2MPath(3, 1), instance) or "")
    assert "cannot stand" in (node_matches_path(LwM2MPath(3, 0, 0), instance) or "")


def test_timestamped_nodes_relative_times() -> None:
    nodes = {LwM2MPath(3, 0, 9): SingleResource(9, T.INTEGER, 1)}
    assert TimestampedNodes(-5, nodes).is_relative
    assert TimestampedNodes(-5, nodes).resolved(1000).timestamp == 995
    assert not TimestampedNodes(1.7e9, nodes).is_relative
    assert TimestampedNodes(None, nodes).resolved(5).timestamp == 5
