"""A registry of object definitions, resolving ``(object id, version)``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..errors import ModelError
from .definitions import ObjectModel, ResourceModel, version_key

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """Object definitions by id and version.

    Without a version, lookups return the *latest* version known for the object, unless the
    registry was derived with :meth:`pinned` (a per-client view: the versions a client
    announced in its Register object list). The content formats use :meth:`resource` through
    a per-object cache, so lookups stay cheap on the decode path.
    """

    def __init__(
        self, objects: Iterable[ObjectModel] = (), *, pinned: Mapping[int, str] | None = None
    ) -> None:
        self._by_id: dict[int, dict[str, ObjectModel]] = {}
        self._current: dict[int, ObjectModel] = {}
        self._pins: dict[int, str] = dict(pinned or {})
        self._derived: dict[object, dict[int, object]] = {}
        for obj in objects:
            self.add(obj, replace=True)

    @classmethod
    def with_core_objects(cls) -> ModelRegistry:
        """A registry holding the definitions shipped with aiolwm2m (all versions)."""
        from .core_objects import core_object_models

        return cls(core_object_models())

    # -- mutation ---------------------------------------------------------------------------
    def add(self, obj: ObjectModel, *, replace: bool = False) -> None:
        versions = self._by_id.setdefault(obj.id, {})
        if obj.version in versions and not replace and versions[obj.version] != obj:
            raise ModelError(f"object {obj.id} version {obj.version} is already defined")
        versions[obj.version] = obj
        self._refresh(obj.id)

    def load_file(self, path: str | Path) -> list[ObjectModel]:
        """Load one DDF file; later definitions replace earlier ones of the same version."""
        from .ddf import load_ddf_file

        document = load_ddf_file(path)
        for obj in document.objects:
            self.add(obj, replace=True)
        return list(document.objects)

    def load_directory(self, path: str | Path, *, recursive: bool = False) -> list[ObjectModel]:
        """Load every ``*.xml`` object definition in a directory (sorted by name).

        Files that are valid DDF documents without object definitions (the registry index,
        reusable resources, units) are skipped.
        """
        directory = Path(path)
        if not directory.is_dir():
            raise ModelError(f"{directory} is not a directory")
        pattern = "**/*.xml" if recursive else "*.xml"
        loaded: list[ObjectModel] = []
        for file in sorted(directory.glob(pattern)):
            if file.is_file():
                loaded.extend(self.load_file(file))
        return loaded

    def pinned(self, versions: Mapping[int, str]) -> ModelRegistry:
        """A registry sharing these definitions that resolves ``versions`` by default.

        Pins to versions this registry does not know fall back to the latest version.
        """
        view = ModelRegistry(pinned={**self._pins, **versions})
        view._by_id = {oid: dict(v) for oid, v in self._by_id.items()}
        for oid in view._by_id:
            view._refresh(oid)
        return view

    def derived_cache(self, key: object) -> dict[int, object]:
        """A scratch dict for data derived from the current definitions (codec lookups).

        It is emptied whenever a definition is added, so users need no invalidation logic.
        """
        cache = self._derived.get(key)
        if cache is None:
            cache = self._derived[key] = {}
        return cache

    def _refresh(self, object_id: int) -> None:
        self._derived.clear()
        versions = self._by_id[object_id]
        pin = self._pins.get(object_id)
        if pin is not None and pin in versions:
            self._current[object_id] = versions[pin]
        else:
            self._current[object_id] = versions[max(versions, key=version_key)]

    # -- lookups ------------------------------------------------------------------------------
    def get(self, object_id: int, version: str | None = None) -> ObjectModel | None:
        if version is None:
            return self._current.get(object_id)
        versions = self._by_id.get(object_id)
        return None if versions is None else versions.get(version)

    def require(self, object_id: int, version: str | None = None) -> ObjectModel:
        found = self.get(object_id, version)
        if found is None:
            which = f" version {version}" if version else ""
            raise ModelError(f"no definition of object {object_id}{which}")
        return found

    def resource(self, object_id: int, resource_id: int) -> ResourceModel | None:
        obj = self._current.get(object_id)
        return None if obj is None else obj.resources.get(resource_id)

    def versions(self, object_id: int) -> list[str]:
        return sorted(self._by_id.get(object_id, {}), key=version_key)

    def object_ids(self) -> list[int]:
        return sorted(self._by_id)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._by_id

    def __iter__(self) -> Iterator[ObjectModel]:
        for oid in sorted(self._by_id):
            yield self._current[oid]

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        total = sum(len(v) for v in self._by_id.values())
        return f"<ModelRegistry {len(self._by_id)} objects, {total} versions>"
