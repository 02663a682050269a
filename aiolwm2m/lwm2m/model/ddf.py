"""Loader for OMA DDF XML files (``LWM2M.xsd`` and ``LWM2M-v1_1.xsd`` forms).

Parsing uses :mod:`xml.etree.ElementTree` on bytes the caller names (a file, or bytes already
read); nothing is fetched. Documents with a DTD (``<!DOCTYPE``/``<!ENTITY``) are refused before
parsing, so no entity is ever expanded, and documents are capped at :data:`MAX_DDF_BYTES`.

Besides object definitions, the OMA registry folder holds three other kinds of documents,
which load as such instead of failing:

* ``DDF.xml`` (root ``DDFList``): the registry index, as :class:`RegistryEntry` rows;
* ``Common.xml`` (``ObjectType="CommonResources"``): reusable resources (ids 4000+);
* ``LWM2M_senml_units.xml`` (root ``units``): extra SenML unit symbols.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from ..errors import DdfError
from ..values import ResourceType
from .definitions import ObjectModel, Operations, ResourceModel

__all__ = [
    "MAX_DDF_BYTES",
    "DdfDocument",
    "RegistryEntry",
    "load_ddf_bytes",
    "load_ddf_file",
]

MAX_DDF_BYTES: Final = 4 * 1024 * 1024
_DTD_MARKERS: Final = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

DocumentKind = Literal["objects", "common-resources", "registry-index", "units"]


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One row of the registry index (``DDF.xml``)."""

    object_id: int
    name: str
    version: str
    urn: str
    ddf: str


@dataclass(frozen=True, slots=True)
class DdfDocument:
    """What one DDF file held."""

    source: str
    kind: DocumentKind
    objects: tuple[ObjectModel, ...] = ()
    common_resources: tuple[ResourceModel, ...] = ()
    registry_entries: tuple[RegistryEntry, ...] = ()
    units: tuple[str, ...] = field(default=())


def load_ddf_file(path: str | Path) -> DdfDocument:
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_DDF_BYTES + 1)
    except OSError as exc:
        raise DdfError(str(file), f"cannot read: {exc.strerror or exc}") from None
    return load_ddf_bytes(data, source=str(file))


def load_ddf_bytes(data: bytes, *, source: str = "<bytes>") -> DdfDocument:
    if len(data) > MAX_DDF_BYTES:
        raise DdfError(source, f"larger than {MAX_DDF_BYTES} bytes")
    if _DTD_MARKERS.search(data):
        raise DdfError(source, "documents with a DTD or entity declarations are refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DdfError(source, f"not well-formed XML ({exc})") from None
    tag = _local(root.tag)
    if tag == "DDFList":
        return DdfDocument(source, "registry-index", registry_entries=_index_entries(root, source))
    if tag == "units":
        symbols = tuple(_text(v) for v in root.iter() if _local(v.tag) == "value")
        return DdfDocument(source, "units", units=symbols)
    if tag != "LWM2M":
        raise DdfError(source, f"unexpected root element <{tag}>")
    objects: list[ObjectModel] = []
    common: list[ResourceModel] = []
    for element in _children(root, "Object"):
        if element.get("ObjectType", "MODefinition") == "CommonResources":
            common.extend(_resources(element, source, "common resources"))
        else:
            objects.append(_object(element, source))
    if common and not objects:
        return DdfDocument(source, "common-resources", common_resources=tuple(common))
    if not objects:
        raise DdfError(source, "no <Object> definition found")
    return DdfDocument(source, "objects", objects=tuple(objects), common_resources=tuple(common))


# --- element helpers ---------------------------------------------------------------------------
def _local(tag: str) -> str:
    # Tolerate namespaced documents although the OMA files use none.
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _field(element: ET.Element, name: str) -> str:
    return _text(_child(element, name))


def _int_field(element: ET.Element, name: str, source: str, where: str) -> int:
    text = _field(element, name)
    if not (text.isascii() and text.isdigit()):
        raise DdfError(source, f"{where}: <{name}> {text!r} is not a non-negative integer")
    return int(text)


def _flag(text: str, true_word: str, false_word: str, default: bool) -> bool | None:
    lowered = text.lower()
    if not lowered:
        return default
    if lowered == true_word:
        return True
    if lowered == false_word:
        return False
    return None


def _object(element: ET.Element, source: str) -> ObjectModel:
    object_id = _int_field(element, "ObjectID", source, "object")
    where = f"object {object_id}"
    multiple = _flag(_field(element, "MultipleInstances"), "multiple", "single", False)
    mandatory = _flag(_field(element, "Mandatory"), "mandatory", "optional", False)
    if multiple is None or mandatory is None:
        raise DdfError(source, f"{where}: bad MultipleInstances or Mandatory value")
    resources = _resources(element, source, where)
    by_id: dict[int, ResourceModel] = {}
    for resource in resources:
        if resource.id in by_id:
            raise DdfError(source, f"{where}: resource {resource.id} defined twice")
        by_id[resource.id] = resource
    version = _field(element, "ObjectVersion") or "1.0"
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        raise DdfError(source, f"{where}: ObjectVersion {version!r} is not dotted numbers")
    return ObjectModel(
        id=object_id,
        name=_field(element, "Name"),
        version=version,
        multiple=multiple,
        mandatory=mandatory,
        description=_field(element, "Description1"),
        urn=_field(element, "ObjectURN"),
        lwm2m_version=_field(element, "LWM2MVersion") or "1.0",
        resources=by_id,
    )


def _resources(element: ET.Element, source: str, where: str) -> list[ResourceModel]:
    container = _child(element, "Resources")
    if container is None:
        return []
    out: list[ResourceModel] = []
    for item in _children(container, "Item"):
        raw_id = (item.get("ID") or "").strip()
        if not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) > 65535:
            raise DdfError(source, f"{where}: resource ID {raw_id!r} is not in 0..65535")
        rid = int(raw_id)
        try:
            operations = Operations.from_ddf_name(_field(item, "Operations"))
            rtype = ResourceType.from_ddf_name(_field(item, "Type"))
        except ValueError as exc:
            raise DdfError(source, f"{where} resource {rid}: {exc}") from None
        multiple = _flag(_field(item, "MultipleInstances"), "multiple", "single", False)
        mandatory = _flag(_field(item, "Mandatory"), "mandatory", "optional", False)
        if multiple is None or mandatory is None:
            raise DdfError(source, f"{where} resource {rid}: bad MultipleInstances or Mandatory")
        out.append(
            ResourceModel(
                id=rid,
                name=_field(item, "Name"),
                operations=operations,
                multiple=multiple,
                mandatory=mandatory,
                type=rtype,
                range_enumeration=_field(item, "RangeEnumeration"),
                units=_field(item, "Units"),
                description=_field(item, "Description"),
            )
        )
    return out


def _index_entries(root: ET.Element, source: str) -> tuple[RegistryEntry, ...]:
    entries: list[RegistryEntry] = []
    for item in _children(root, "Item"):
        oid_text = _field(item, "ObjectID")
        if not (oid_text.isascii() and oid_text.isdigit()):
            raise DdfError(source, f"index entry with ObjectID {oid_text!r}")
        entries.append(
            RegistryEntry(
                object_id=int(oid_text),
                name=_field(item, "Name"),
                version=_field(item, "Ver") or "1.0",
                urn=_field(item, "URN"),
                ddf=_field(item, "DDF"),
            )
        )
    return tuple(entries)
