from __future__ import annotations

import pytest

from aiolwm2m.lwm2m import (
    InvalidAttribute,
    LwM2MPath,
    ModelRegistry,
    NotificationAttributes,
    merge_attributes,
    parse_write_attributes,
    validate_attributes,
)
from aiolwm2m.lwm2m.attributes import attributes_from_link_params


def test_parse_sets_and_unsets() -> None:
    update = parse_write_attributes("pmin=10&gt=30.5&lt")
    assert update.set == NotificationAttributes(pmin=10, gt=30.5)
    assert update.unset == frozenset({"lt"})
    current = NotificationAttributes(pmin=1, pmax=60, lt=2.0)
    assert update.apply_to(current) == NotificationAttributes(pmin=10, pmax=60, gt=30.5)
    assert parse_write_attributes(["pmin=1", "pmax=2"]).set == NotificationAttributes(
        pmin=1, pmax=2
    )
    assert parse_write_attributes("con=1&hqmax=3&epmin=1&epmax=5").set.items() == [
        ("epmin", 1),
        ("epmax", 5),
        ("con", 1),
        ("hqmax", 3),
    ]


@pytest.mark.parametrize(
    ("query", "name", "reason"),
    [
        ("foo=1", "foo", "unknown attribute"),
        ("pmin=-1", "pmin", "non-negative integer"),
        ("pmin=1.5", "pmin", "non-negative integer"),
        ("gt=abc", "gt", "not a number"),
        ("gt=nan", "gt", "finite"),
        ("con=2", "con", "0 or 1"),
        ("pmin=1&pmin=2", "pmin", "given twice"),
    ],
)
def test_parse_errors(query: str, name: str, reason: str) -> None:
    with pytest.raises(InvalidAttribute, match=reason) as info:
        parse_write_attributes(query)
    assert info.value.name == name
    assert info.value.coap_code == "4.00"


@pytest.mark.parametrize(
    ("attributes", "name", "reason"),
    [
        (NotificationAttributes(pmin=10, pmax=5), "pmax", "below pmin"),
        (NotificationAttributes(epmin=10, epmax=5), "epmax", "below epmin"),
        (NotificationAttributes(st=0.0), "st", "greater than 0"),
        (NotificationAttributes(lt=5.0, gt=5.0), "lt", "below gt"),
        (NotificationAttributes(lt=1.0, gt=5.0, st=2.0), "st", "lt \\+ 2\\*st"),
    ],
)
def test_validation_rules(attributes: NotificationAttributes, name: str, reason: str) -> None:
    with pytest.raises(InvalidAttribute, match=reason) as info:
        validate_attributes(attributes)
    assert info.value.name == name


def test_numeric_attributes_only_on_numeric_single_resources(model: ModelRegistry) -> None:
    device = model.require(3)
    validate_attributes(
        NotificationAttributes(lt=1.0, gt=5.0, st=1.9), LwM2MPath(3, 0, 9), device.resources[9]
    )
    with pytest.raises(InvalidAttribute, match="not numeric"):
        validate_attributes(NotificationAttributes(gt=1.0), LwM2MPath(3, 0, 0), device.resources[0])
    with pytest.raises(InvalidAttribute, match="multiple-instance"):
        validate_attributes(NotificationAttributes(gt=1.0), LwM2MPath(3, 0, 7), device.resources[7])
    validate_attributes(NotificationAttributes(gt=1.0), LwM2MPath(3, 0, 7, 0), device.resources[7])
    with pytest.raises(InvalidAttribute, match="only allowed on a resource"):
        validate_attributes(NotificationAttributes(st=1.0), LwM2MPath(3, 0))
    validate_attributes(NotificationAttributes(pmin=1, pmax=2), LwM2MPath(3))


def test_merge_inheritance_and_link_params() -> None:
    obj = NotificationAttributes(pmin=10, pmax=60)
    instance = NotificationAttributes(pmax=30, gt=1.0)
    resource = NotificationAttributes(pmin=1)
    assert merge_attributes(obj, instance, resource) == NotificationAttributes(
        pmin=1, pmax=30, gt=1.0
    )
    assert merge_attributes(None, obj) == obj
    params = NotificationAttributes(pmin=1, gt=30.5, st=2.0).to_link_params()
    assert params == [("pmin", "1"), ("gt", "30.5"), ("st", "2")]
    assert attributes_from_link_params([*params, ("dim", "2")]) == NotificationAttributes(
        pmin=1, gt=30.5, st=2.0
    )
    assert NotificationAttributes(pmin=1, pmax=2).to_query() == "pmin=1&pmax=2"
