"""Object and resource definitions (what a DDF file describes)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import ModelError
from ..values import ResourceType

__all__ = ["ObjectModel", "Operations", "ResourceModel", "version_key"]


class Operations(enum.Enum):
    """Operations a resource allows; values are the DDF spellings."""

    NONE = ""
    R = "R"
    W = "W"
    RW = "RW"
    E = "E"

    @classmethod
    def from_ddf_name(cls, text: str) -> Operations:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(f"unknown operations {text!r}") from None

    @property
    def readable(self) -> bool:
        return self is Operations.R or self is Operations.RW

    @property
    def writable(self) -> bool:
        return self is Operations.W or self is Operations.RW

    @property
    def executable(self) -> bool:
        return self is Operations.E


@dataclass(frozen=True, slots=True)
class ResourceModel:
    """One resource of an object definition."""

    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    range_enumeration: str = ""
    units: str = ""
    description: str = ""

    @property
    def readable(self) -> bool:
        return self.operations.readable

    @property
    def writable(self) -> bool:
        return self.operations.writable

    @property
    def executable(self) -> bool:
        return self.operations.executable


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of an object version (``"1.10"`` comes after ``"1.2"``)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise ModelError(f"object version {version!r} is not dotted numbers") from None


@dataclass(frozen=True, slots=True)
class ObjectModel:
    """One version of an object definition."""

    id: int
    name: str
    version: str = "1.0"
    multiple: bool = False
    mandatory: bool = False
    description: str = ""
    urn: str = ""
    lwm2m_version: str = "1.0"
    resources: Mapping[int, ResourceModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        version_key(self.version)
        for rid, resource in self.resources.items():
            if resource.id != rid:
                raise ModelError(f"object {self.id}: resource keyed {rid} has id {resource.id}")
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    def resource(self, resource_id: int) -> ResourceModel | None:
        return self.resources.get(resource_id)

    @property
    def version_key(self) -> tuple[int, ...]:
        return version_key(self.version)

    def __hash__(self) -> int:
        return hash((self.id, self.version, self.name))
