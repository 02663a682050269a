"""LwM2M paths: ``/``, ``/o``, ``/o/i``, ``/o/i/r`` and ``/o/i/r/ri``.

:class:`LwM2MPath` is a tuple of ids. Being a tuple makes it immutable and hashable for free
and gives the ordering the protocol needs (numeric per level, a parent before its children),
at C speed: decoders create one per record. A path therefore compares equal to the plain
tuple of its ids.
"""

from __future__ import annotations

from typing import Final

from .errors import InvalidPath, shown

__all__ = ["MAX_ID", "ROOT", "LwM2MPath"]

MAX_ID: Final = 65535
# Digits of an id, leading zeros included ("00003" is 3); longer segments are out of range.
_MAX_ID_DIGITS: Final = 7
# Depth of each level, for readability where the code tests lengths.
_OBJECT, _INSTANCE, _RESOURCE, _RESOURCE_INSTANCE = 1, 2, 3, 4
_LEVEL_NAMES: Final = ("root", "object", "object instance", "resource", "resource instance")

_new_tuple = tuple.__new__


class LwM2MPath(tuple[int, ...]):
    """An immutable, hashable, totally ordered LwM2M path.

    ``LwM2MPath(3, 0, 1)`` builds from ids, ``LwM2MPath.parse("/3/0/1")`` from text;
    ``str()`` gives the text back.
    """

    __slots__ = ()

    def __new__(cls, *ids: int) -> LwM2MPath:
        _check_ids(ids, None)
        return _new_tuple(cls, ids)

    @classmethod
    def parse(cls, text: str) -> LwM2MPath:
        """Parse ``"/3/0/1"``; ``"/"`` is the root. Raises :class:`InvalidPath`."""
        if not isinstance(text, str):
            raise InvalidPath(shown(text), "a path must be a string")
        if not text.startswith("/"):
            raise InvalidPath(text, "a path must start with '/'")
        if text == "/":
            return ROOT
        # At most 5 splits: a hostile name of 30,000 slashes costs no more than a short one.
        segments = text[1:].split("/", _RESOURCE_INSTANCE)
        if len(segments) > _RESOURCE_INSTANCE:
            raise InvalidPath(text, "at most 4 levels are allowed")
        ids: list[int] = []
        for position, segment in enumerate(segments):
            if not segment:
                raise InvalidPath(text, f"empty segment at level {position + 1}")
            if not (segment.isascii() and segment.isdigit()):
                raise InvalidPath(text, f"segment {shown(segment, 20)} is not a decimal id")
            # Checked before int(): a 4,301-digit id would make int() raise ValueError.
            if len(segment) > _MAX_ID_DIGITS:
                raise InvalidPath(text, f"id {shown(segment, 20)} is outside 0..{MAX_ID}")
            ids.append(int(segment))
        as_tuple = tuple(ids)
        _check_ids(as_tuple, text)
        return _new_tuple(cls, as_tuple)

    @classmethod
    def from_ids(cls, ids: tuple[int, ...] | list[int]) -> LwM2MPath:
        return cls(*ids)

    # -- components -------------------------------------------------------------------------
    @property
    def object_id(self) -> int | None:
        return self[0] if len(self) >= _OBJECT else None

    @property
    def instance_id(self) -> int | None:
        return self[1] if len(self) >= _INSTANCE else None

    @property
    def resource_id(self) -> int | None:
        return self[2] if len(self) >= _RESOURCE else None

    @property
    def resource_instance_id(self) -> int | None:
        return self[3] if len(self) >= _RESOURCE_INSTANCE else None

    @property
    def depth(self) -> int:
        """0 for the root, 4 for a resource instance."""
        return len(self)

    @property
    def level_name(self) -> str:
        return _LEVEL_NAMES[len(self)]

    # -- level predicates ---------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return not self

    @property
    def is_object(self) -> bool:
        return len(self) == _OBJECT

    @property
    def is_object_instance(self) -> bool:
        return len(self) == _INSTANCE

    @property
    def is_resource(self) -> bool:
        return len(self) == _RESOURCE

    @property
    def is_resource_instance(self) -> bool:
        return len(self) == _RESOURCE_INSTANCE

    # -- navigation -------------------------------------------------------------------------
    @property
    def parent(self) -> LwM2MPath:
        if not self:
            raise InvalidPath("/", "the root has no parent")
        return _new_tuple(LwM2MPath, self[:-1])

    def child(self, child_id: int) -> LwM2MPath:
        ids = (*self, child_id)
        _check_ids(ids, None)
        return _new_tuple(LwM2MPath, ids)

    def starts_with(self, prefix: LwM2MPath) -> bool:
        """True when ``prefix`` is this path or one of its ancestors."""
        return self[: len(prefix)] == prefix

    def is_prefix_of(self, other: LwM2MPath) -> bool:
        """True when this path is ``other`` or one of its ancestors."""
        return other[: len(self)] == self

    def relative_ids(self, base: LwM2MPath) -> tuple[int, ...]:
        """The ids that follow ``base`` (which must be a prefix of this path)."""
        if not self.starts_with(base):
            raise InvalidPath(str(self), f"is not under {base}")
        return tuple(self[len(base) :])

    # -- text -------------------------------------------------------------------------------
    def __str__(self) -> str:
        return "/" + "/".join(map(str, self))

    def __repr__(self) -> str:
        return f"LwM2MPath({str(self)!r})"


def _check_ids(ids: tuple[int, ...], text: str | None) -> None:
    if len(ids) > _RESOURCE_INSTANCE:
        raise InvalidPath(text or shown(ids), f"at most 4 levels are allowed, got {len(ids)}")
    for position, value in enumerate(ids):
        if type(value) is not int:
            raise InvalidPath(text or shown(ids), f"id {shown(value, 20)} is not an integer")
        if value < 0 or value > MAX_ID:
            raise InvalidPath(text or shown(ids), f"id {shown(value, 20)} is outside 0..{MAX_ID}")
        # The TS reserves 65535 as "no instance" (e.g. the null object link 65535:65535).
        if position == _INSTANCE - 1 and value == MAX_ID:
            raise InvalidPath(text or shown(ids), "object instance id 65535 is reserved")


def path_from_trusted_ids(ids: tuple[int, ...]) -> LwM2MPath:
    """Build a path from ids the caller has already range-checked (decoders' fast path)."""
    return _new_tuple(LwM2MPath, ids)


ROOT: Final = _new_tuple(LwM2MPath, ())
