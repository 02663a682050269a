"""Link format (40) payloads of LwM2M: Discover results and the Register object list.

Both are CoRE link format (RFC 6690, parsed by :mod:`aiolwm2m.coap.linkformat`); this module
gives them typed shapes:

* Discover: ``</3/0>,</3/0/7>;dim=2,</3/0/13>;pmin=10`` <-> :class:`DiscoveredLink` rows
  (path, ``dim``, ``ver``, notification attributes, and any other parameter kept verbatim);
* Register/Update: ``</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>`` <->
  :class:`ObjectList` (content formats and alternate root path from the ``rt="oma.lwm2m"``
  link, then one :class:`ObjectEntry` per object with its version and instances).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...coap.linkformat import (
    Link,
    LinkFormatError,
    TooManyLinks,
    format_link_format,
    parse_link_format,
)
from ..attributes import NotificationAttributes, attributes_from_link_params
from ..bounded_int import MAX_UINT16, parse_decimal
from ..errors import InvalidAttribute, InvalidPath, InvalidPayload, shown
from ..path import LwM2MPath
from .content_format import ContentFormat

__all__ = [
    "DiscoveredLink",
    "ObjectEntry",
    "ObjectList",
    "ObjectListTooLarge",
    "decode_discover",
    "decode_object_list",
    "encode_discover",
    "encode_object_list",
]

_FMT = ContentFormat.LINK_FORMAT
_LWM2M_RT = "oma.lwm2m"
# An object version is "major.minor" (TS 1.1, "ver"); bounded so that a registration cannot
# store a long string in it.
_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")
# dim counts resource instances, whose ids are 0..65535.
_MAX_DIM = MAX_UINT16 + 1
_OWN_PARAMS = frozenset(
    {"dim", "ver", "pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "con", "hqmax"}
)


class ObjectListTooLarge(InvalidPayload):
    """A Register/Update object list names more objects and instances than allowed."""


def _links(payload: bytes | str, max_links: int | None = None) -> list[Link]:
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(_FMT, None, "not UTF-8", offset=exc.start) from None
    if not payload.strip():
        return []
    try:
        return parse_link_format(payload, max_links)
    except TooManyLinks as exc:
        raise ObjectListTooLarge(_FMT, None, exc.reason, offset=exc.position) from None
    except LinkFormatError as exc:
        raise InvalidPayload(_FMT, None, exc.reason, offset=exc.position) from None


def _path(target: str, index: int) -> LwM2MPath:
    try:
        return LwM2MPath.parse(target)
    except InvalidPath as exc:
        raise InvalidPayload(
            _FMT, None, f"link target <{target[:40]}>: {exc.reason}", index=index
        ) from None


# --- Discover ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DiscoveredLink:
    path: LwM2MPath
    dim: int | None = None
    version: str | None = None
    attributes: NotificationAttributes = field(default_factory=NotificationAttributes)
    other: tuple[tuple[str, str | None], ...] = ()

    def to_link(self) -> Link:
        params: list[tuple[str, str | None]] = []
        if self.version is not None:
            params.append(("ver", self.version))
        if self.dim is not None:
            params.append(("dim", str(self.dim)))
        params.extend(self.attributes.to_link_params())
        params.extend(self.other)
        return Link(str(self.path), params)


def decode_discover(payload: bytes | str) -> list[DiscoveredLink]:
    out: list[DiscoveredLink] = []
    for index, link in enumerate(_links(payload)):
        path = _path(link.target, index)
        dim_text = link.get("dim")
        dim: int | None = None
        if dim_text is not None:
            dim = parse_decimal(dim_text, _MAX_DIM)
            if dim is None:
                raise InvalidPayload(
                    _FMT, path, f"dim {shown(dim_text, 20)} is not a count in 0..{_MAX_DIM}",
                    index=index,
                )
        try:
            attributes = attributes_from_link_params(link.params)
        except InvalidAttribute as exc:
            raise InvalidPayload(_FMT, path, str(exc), index=index) from None
        other = tuple((n, v) for n, v in link.params if n not in _OWN_PARAMS)
        out.append(DiscoveredLink(path, dim, link.get("ver"), attributes, other))
    return out


def encode_discover(links: Iterable[DiscoveredLink]) -> bytes:
    return format_link_format(link.to_link() for link in links).encode("utf-8")


# --- Register / Update object list ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object of a Register payload: its version (``ver``) and instance ids."""

    object_id: int
    version: str | None = None
    instances: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ObjectList:
    objects: tuple[ObjectEntry, ...] = ()
    content_formats: tuple[int, ...] = ()
    root_path: str = "/"
    root_link: bool = False

    def object(self, object_id: int) -> ObjectEntry | None:
        for entry in self.objects:
            if entry.object_id == object_id:
                return entry
        return None

    def versions(self) -> dict[int, str]:
        """Object id -> announced version, for :meth:`ModelRegistry.pinned`."""
        return {e.object_id: e.version for e in self.objects if e.version is not None}


def decode_object_list(payload: bytes | str, *, max_entries: int | None = None) -> ObjectList:
    """The Register/Update object list; linear in the size of the payload.

    ``max_entries`` bounds the object and object-instance links (the ``rt="oma.lwm2m"``
    link is not one): a list holding more raises :class:`ObjectListTooLarge` without
    parsing the rest.
    """
    try:
        links = _links(payload, None if max_entries is None else max_entries + 1)
    except ObjectListTooLarge:
        raise ObjectListTooLarge(
            _FMT, None, f"more than {max_entries} objects and instances"
        ) from None
    root_path = "/"
    content_formats: tuple[int, ...] = ()
    root_link = False
    versions: dict[int, str | None] = {}
    instances: dict[int, dict[int, None]] = {}  # (a dict: an ordered set, for the check below)
    for index, link in enumerate(links):
        if _LWM2M_RT in link.values("rt"):
            if root_link:
                raise InvalidPayload(_FMT, None, 'two rt="oma.lwm2m" links', index=index)
            root_link = True
            root_path = link.target if link.target.endswith("/") else link.target + "/"
            content_formats = _content_formats(link, index)
    if max_entries is not None and len(links) - root_link > max_entries:
        raise ObjectListTooLarge(_FMT, None, f"more than {max_entries} objects and instances")
    for index, link in enumerate(links):
        if _LWM2M_RT in link.values("rt"):
            continue
        target = link.target
        if root_path != "/":
            if not target.startswith(root_path):
                raise InvalidPayload(
                    _FMT, None, f"<{target}> is outside the root {root_path}", index=index
                )
            target = "/" + target[len(root_path) :]
        path = _path(target, index)
        if len(path) == 1:
            version = link.get("ver")
            if version is not None and not _VERSION.fullmatch(version):
                raise InvalidPayload(
                    _FMT, path, f"ver {shown(version, 20)} is not major.minor", index=index
                )
            versions[path[0]] = version or versions.get(path[0])
            instances.setdefault(path[0], {})
        elif len(path) == 2:
            versions.setdefault(path[0], None)
            bucket = instances.setdefault(path[0], {})
            if path[1] in bucket:
                raise InvalidPayload(_FMT, path, "instance listed twice", index=index)
            bucket[path[1]] = None
        else:
            raise InvalidPayload(
                _FMT, path, "only objects and object instances belong here", index=index
            )
    objects = tuple(
        ObjectEntry(oid, versions[oid], tuple(sorted(instances[oid]))) for oid in sorted(versions)
    )
    return ObjectList(objects, content_formats, root_path, root_link)


def _content_formats(link: Link, index: int) -> tuple[int, ...]:
    formats: list[int] = []
    for text in link.values("ct"):
        number = parse_decimal(text, MAX_UINT16)
        if number is None:
            raise InvalidPayload(
                _FMT, None, f"ct {shown(text, 20)} is not a content format number", index=index
            )
        formats.append(number)
    return tuple(formats)


def encode_object_list(
    objects: ObjectList | Iterable[ObjectEntry],
    *,
    content_formats: Iterable[int] = (),
    root_path: str = "/",
) -> bytes:
    """The Register payload; objects with a version or no instances get their own link."""
    if isinstance(objects, ObjectList):
        content_formats = objects.content_formats or tuple(content_formats)
        root_path = objects.root_path
        entries: Iterable[ObjectEntry] = objects.objects
    else:
        entries = objects
    prefix = root_path.rstrip("/")
    links: list[Link] = []
    formats = tuple(content_formats)
    wants_root = isinstance(objects, ObjectList) and objects.root_link
    if formats or prefix or wants_root:
        params: list[tuple[str, str | None]] = [("rt", _LWM2M_RT)]
        if formats:
            params.append(("ct", " ".join(str(f) for f in formats)))
        links.append(Link(prefix + "/", params))
    for entry in sorted(entries, key=lambda e: e.object_id):
        if entry.version is not None or not entry.instances:
            params = [("ver", entry.version)] if entry.version is not None else []
            links.append(Link(f"{prefix}/{entry.object_id}", params))
        for iid in entry.instances:
            links.append(Link(f"{prefix}/{entry.object_id}/{iid}"))
    return format_link_format(links).encode("utf-8")
