"""The shipped definitions agree with the OMA registry snapshot on every fact."""

from __future__ import annotations

from aiolwm2m.lwm2m import ModelRegistry
from aiolwm2m.lwm2m.model.core_objects import core_object_models
from aiolwm2m.lwm2m.model.ddf import load_ddf_file

from ..conftest import DDF_DIR, need

EXPECTED_IDS = {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 19, 21, 25, 3300, 3303, 3311}


def _registry_snapshot() -> dict[tuple[int, str], object]:
    out = {}
    for file in sorted((need(DDF_DIR) / "version_history").glob("*.xml")):
        object_id = int(file.name.split("-")[0])
        if object_id in EXPECTED_IDS:
            for obj in load_ddf_file(file).objects:
                out[(obj.id, obj.version)] = obj
    return out


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_shipped_definitions_match_the_registry() -> None:
    snapshot = _registry_snapshot()
    shipped = {(m.id, m.version): m for m in core_object_models()}
    assert {oid for oid, _ in shipped} == EXPECTED_IDS
    assert set(shipped) == set(snapshot), "every registry version of these objects is shipped"
    for key, ours in shipped.items():
        theirs = snapshot[key]
        assert (ours.name, ours.multiple, ours.mandatory, ours.lwm2m_version) == (
            _norm(theirs.name),  # type: ignore[attr-defined]
            theirs.multiple,  # type: ignore[attr-defined]
            theirs.mandatory,  # type: ignore[attr-defined]
            theirs.lwm2m_version,  # type: ignore[attr-defined]
        ), key
        assert set(ours.resources) == set(theirs.resources), key  # type: ignore[attr-defined]
        for rid, resource in ours.resources.items():
            other = theirs.resources[rid]  # type: ignore[attr-defined]
            facts = (
                resource.name,
                resource.operations,
                resource.type,
                resource.multiple,
                resource.mandatory,
            )
            assert facts == (
                _norm(other.name),
                other.operations,
                other.type,
                other.multiple,
                other.mandatory,
            ), (
                key,
                rid,
            )
            assert (resource.range_enumeration, resource.units) == (
                other.range_enumeration,
                other.units,
            )
            assert resource.description != other.description or not resource.description


def test_descriptions_are_short_and_present() -> None:
    for model in core_object_models():
        assert model.description and len(model.description) < 120
        for resource in model.resources.values():
            assert resource.description, (model.id, resource.id)
            assert len(resource.description) < 80


def test_registry_from_core_objects() -> None:
    registry = ModelRegistry.with_core_objects()
    temperature = registry.require(3303)
    assert temperature.resources[5700].type.value == "Float" and temperature.multiple
    assert registry.require(0).version == "1.2"
    assert registry.versions(4) == ["1.0", "1.1", "1.2", "1.3"]
    assert registry.resource(3, 7) is not None and registry.resource(3, 7).multiple  # type: ignore[union-attr]
