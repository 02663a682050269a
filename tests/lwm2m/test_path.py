from __future__ import annotations

import pytest

from aiolwm2m.lwm2m import ROOT, InvalidPath, LwM2MPath


@pytest.mark.parametrize(
    "text", ["/", "/3", "/3/0", "/3/0/1", "/3/0/7/1", "/65535/65534/65535/65535"]
)
def test_parse_str_round_trip(text: str) -> None:
    assert str(LwM2MPath.parse(text)) == text


def test_components_and_levels() -> None:
    path = LwM2MPath.parse("/3/0/7/1")
    assert (path.object_id, path.instance_id, path.resource_id, path.resource_instance_id) == (
        3,
        0,
        7,
        1,
    )
    assert path.is_resource_instance and not path.is_resource
    assert LwM2MPath(3, 0, 7).is_resource
    assert LwM2MPath(3, 0).is_object_instance
    assert LwM2MPath(3).is_object
    assert ROOT.is_root and ROOT.object_id is None
    assert LwM2MPath(3).instance_id is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3/0", "must start with '/'"),
        ("/3//1", "empty segment at level 2"),
        ("/3/0/", "empty segment at level 3"),
        ("/a/0", "not a decimal id"),
        ("/-1", "not a decimal id"),
        ("/3/ 0", "not a decimal id"),
        ("/\u0663", "not a decimal id"),
        ("/65536", "outside 0..65535"),
        ("/3/65535", "object instance id 65535 is reserved"),
        ("/1/2/3/4/5", "at most 4 levels"),
    ],
)
def test_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidPath, match=reason) as info:
        LwM2MPath.parse(text)
    assert info.value.path == text


def test_constructor_checks() -> None:
    with pytest.raises(InvalidPath, match="outside"):
        LwM2MPath(3, 70000)
    with pytest.raises(InvalidPath, match="reserved"):
        LwM2MPath(3, 65535)
    with pytest.raises(InvalidPath, match="not an integer"):
        LwM2MPath(3, True)
    assert LwM2MPath(3, 0, 65535) == LwM2MPath.parse("/3/0/65535")


def test_navigation() -> None:
    path = LwM2MPath(3, 0, 7)
    assert path.parent == LwM2MPath(3, 0)
    assert path.child(1) == LwM2MPath(3, 0, 7, 1)
    assert ROOT.child(3) == LwM2MPath(3)
    with pytest.raises(InvalidPath, match="root has no parent"):
        _ = ROOT.parent
    with pytest.raises(InvalidPath, match="at most 4"):
        LwM2MPath(3, 0, 7, 1).child(2)
    assert path.starts_with(LwM2MPath(3)) and path.starts_with(ROOT) and path.starts_with(path)
    assert not path.starts_with(LwM2MPath(3, 1))
    assert LwM2MPath(3, 0).is_prefix_of(path) and not path.is_prefix_of(LwM2MPath(3, 0))
    assert path.relative_ids(LwM2MPath(3)) == (0, 7)


def test_total_order_numeric_parent_first() -> None:
    texts = ["/10", "/3/0/10", "/3/0/2", "/3", "/", "/3/0/2/1", "/3/1", "/3/0"]
    ordered = sorted(LwM2MPath.parse(t) for t in texts)
    assert [str(p) for p in ordered] == [
        "/",
        "/3",
        "/3/0",
        "/3/0/2",
        "/3/0/2/1",
        "/3/0/10",
        "/3/1",
        "/10",
    ]


def test_hashable_and_equal() -> None:
    assert {LwM2MPath(3, 0): 1}[LwM2MPath.parse("/3/0")] == 1
    assert repr(LwM2MPath(3, 0)) == "LwM2MPath('/3/0')"
