"""Every DDF file of the OMA registry snapshot loads (top level and version_history/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiolwm2m.lwm2m import DdfError, ModelRegistry, Operations, ResourceType
from aiolwm2m.lwm2m.model.ddf import load_ddf_bytes, load_ddf_file

from ..conftest import DDF_DIR, need


def _all_files() -> list[Path]:
    return sorted(need(DDF_DIR).glob("*.xml")) + sorted((DDF_DIR / "version_history").glob("*.xml"))


def test_every_ddf_file_loads() -> None:
    files = _all_files()
    kinds: dict[str, int] = {}
    objects = 0
    for file in files:
        document = load_ddf_file(file)
        kinds[document.kind] = kinds.get(document.kind, 0) + 1
        objects += len(document.objects)
    top = len(list(DDF_DIR.glob("*.xml")))
    history = len(list((DDF_DIR / "version_history").glob("*.xml")))
    print(
        f"loaded {len(files)} DDF files ({top} top-level, {history} version_history): "
        f"{kinds}, {objects} objects"
    )
    assert len(files) == top + history >= 700
    assert kinds["objects"] == len(files) - 3
    assert kinds == {
        "objects": len(files) - 3,
        "registry-index": 1,
        "common-resources": 1,
        "units": 1,
    }


def test_registry_load_directory_resolves_latest_and_versions() -> None:
    registry = ModelRegistry()
    loaded = registry.load_directory(need(DDF_DIR), recursive=True)
    assert len(loaded) >= 700
    assert registry.versions(3) == ["1.0", "1.1", "1.2"]
    assert registry.require(3).version == "1.2"
    assert registry.require(3, "1.0").lwm2m_version == "1.0"
    assert registry.get(3, "9.9") is None
    pinned = registry.pinned({3: "1.0"})
    assert pinned.require(3).version == "1.0" and registry.require(3).version == "1.2"
    device = registry.require(3)
    reboot = device.resources[4]
    assert reboot.operations is Operations.E and reboot.type is ResourceType.NONE
    assert device.resources[13].type is ResourceType.TIME and not device.multiple


def test_registry_index_and_common_resources() -> None:
    index = load_ddf_file(need(DDF_DIR) / "DDF.xml")
    assert any(entry.object_id == 3 for entry in index.registry_entries)
    common = load_ddf_file(DDF_DIR / "Common.xml")
    assert common.kind == "common-resources" and common.common_resources[0].id == 4000


def test_minimal_document_and_defaults() -> None:
    document = load_ddf_bytes(
        b"<LWM2M><Object ObjectType='MODefinition'><Name>X</Name><ObjectID>40000</ObjectID>"
        b"<MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>"
        b"<Resources><Item ID='1'><Name>V</Name><Operations>RW</Operations>"
        b"<MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>"
        b"<Type>Unsigned Integer</Type><Units>s</Units></Item></Resources></Object></LWM2M>"
    )
    (obj,) = document.objects
    assert (obj.id, obj.version, obj.lwm2m_version, obj.multiple) == (40000, "1.0", "1.0", True)
    assert obj.resources[1].type is ResourceType.UNSIGNED_INTEGER and obj.resources[1].units == "s"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><LWM2M/>', "DTD"),
        (b"<LWM2M><Object>", "not well-formed"),
        (b"<Other/>", "unexpected root"),
        (b"<LWM2M/>", "no <Object>"),
        (b"<LWM2M><Object><ObjectID>x</ObjectID></Object></LWM2M>", "ObjectID"),
        (
            b"<LWM2M><Object><ObjectID>1</ObjectID><Resources><Item ID='1'><Type>Decimal</Type>"
            b"</Item></Resources></Object></LWM2M>",
            "unknown resource type",
        ),
    ],
)
def test_bad_documents(data: bytes, reason: str) -> None:
    with pytest.raises(DdfError, match=reason):
        load_ddf_bytes(data, source="test.xml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DdfError, match="cannot read"):
        load_ddf_file(tmp_path / "absent.xml")
