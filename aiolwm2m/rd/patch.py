"""The link-patch document of ``PATCH``/``iPATCH`` on a registration resource (CRD-002).

RFC 9176 left changing a registration's links short of replacing them all to future work;
this is our extension. The body is a JSON object (Content-Format 50) or the same as a CBOR
map (60)::

    {"remove": ["/sensors/old"],
     "add": "</sensors/new>;rt=\\"temperature\\",</actuators/1>",
     "update": {"/sensors/temp": {"rt": "temperature", "obs": true, "title": null}}}

* ``remove``: hrefs (link targets exactly as registered); every link with that target goes.
* ``add``: links in link format (one string, or a list of strings); a target that is
  already registered (after the removals) is refused: change it with ``update``.
* ``update``: per href, attributes to change: a string sets the attribute (replacing every
  occurrence), ``true`` sets it without a value (``obs``), ``null`` removes it.

They apply in that order, to the registration as it is, all or nothing: a document naming
a link that does not exist, or that is malformed in any part, is refused with 4.00 and
changes nothing. PATCH and iPATCH mean the same (a repeated request leaves the same links,
though its answer may then be 4.00).
"""

from __future__ import annotations

import json
import string
from typing import Any, NamedTuple

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m.errors import LwM2MError, shown
from aiolwm2m.lwm2m.formats.cbor_support import load_one
from aiolwm2m.lwm2m.formats.json_unicode import lone_surrogate
from aiolwm2m.store.rd_records import LinkParams, RdLink

from .errors import RdError, bad_request
from .links import check_target, parse_links

JSON = 50
CBOR = 60
_MEMBERS = frozenset({"add", "remove", "update"})
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&+-.^_`|~")
#: Attribute changes of one update entry, and entries of any list in the document.
MAX_ITEMS = 1000


class AttributeChange(NamedTuple):
    name: str
    #: ``None``: remove; ``True``: set without a value; a string: set to it.
    value: str | bool | None


class LinkPatch(NamedTuple):
    remove: tuple[str, ...]
    add: tuple[RdLink, ...]
    update: tuple[tuple[str, tuple[AttributeChange, ...]], ...]


def parse_patch(payload: bytes, content_format: int | None, *, max_links: int,
                max_bytes: int) -> LinkPatch:
    if content_format not in (JSON, CBOR):
        raise RdError(Code.UNSUPPORTED_CONTENT_FORMAT,
                      "a link patch is JSON (50) or CBOR (60)")
    if len(payload) > max_bytes:
        raise RdError(Code.REQUEST_ENTITY_TOO_LARGE, f"link patch larger than {max_bytes} bytes")
    doc = _decode(payload, content_format)
    if not isinstance(doc, dict):
        raise bad_request("a link patch is an object with add, remove and/or update")
    unknown = [k for k in doc if k not in _MEMBERS]
    if unknown:
        raise bad_request(f"unknown link patch member {shown(unknown[0], 24)}")
    remove = _strings(doc.get("remove", []), "remove")
    for href in remove:
        check_target(href)
    add = _added(doc.get("add", []), max_links=max_links, max_bytes=max_bytes)
    update = _updates(doc.get("update", {}))
    return LinkPatch(remove, add, update)


def _decode(payload: bytes, content_format: int) -> Any:
    if content_format == CBOR:
        try:
            return load_one(CBOR, payload)
        except LwM2MError as e:
            raise bad_request(f"link patch is not CBOR: {e}") from None
    try:
        doc = json.loads(payload)
    except RecursionError:
        raise bad_request("link patch nested too deep") from None
    except ValueError as e:
        raise bad_request(f"link patch is not JSON: {shown(str(e), 60)}") from None
    if lone_surrogate(payload, doc):
        raise bad_request("link patch is not JSON text: a string escapes a lone surrogate")
    return doc


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{what} must be a list of strings")
    if len(value) > MAX_ITEMS:
        raise bad_request(f"{what} lists more than {MAX_ITEMS} entries")
    return tuple(value)


def _added(value: Any, *, max_links: int, max_bytes: int) -> tuple[RdLink, ...]:
    texts = (value,) if isinstance(value, str) else _strings(value, "add")
    links: list[RdLink] = []
    for text in texts:
        links.extend(parse_links(text.encode("utf-8"), None, max_links=max_links,
                                 max_bytes=max_bytes))
    return tuple(links)


def _updates(value: Any) -> tuple[tuple[str, tuple[AttributeChange, ...]], ...]:
    if not isinstance(value, dict):
        raise bad_request("update must map hrefs to attribute changes")
    if len(value) > MAX_ITEMS:
        raise bad_request(f"update names more than {MAX_ITEMS} links")
    out: list[tuple[str, tuple[AttributeChange, ...]]] = []
    for href, changes in value.items():
        if not isinstance(href, str):
            raise bad_request("update keys are hrefs (strings)")
        check_target(href)
        if not isinstance(changes, dict) or len(changes) > MAX_ITEMS:
            raise bad_request(f"update of <{_short(href)}> must be an object of "
                              "attributes")
        parsed: list[AttributeChange] = []
        for name, v in changes.items():
            if not isinstance(name, str) or not name or any(
                    c not in _NAME_CHARS for c in name):
                raise bad_request(f"{shown(name, 24)} is not a link attribute name")
            if not (v is None or v is True or isinstance(v, str)):
                raise bad_request(f"attribute {name} takes a string, true or null")
            parsed.append(AttributeChange(name, v))
        out.append((href, tuple(parsed)))
    return tuple(out)


def _short(text: str) -> str:
    """A target in a diagnostic: short (replies must stay small), control characters were
    refused by check_target already."""
    return text if len(text) <= 40 else text[:37] + "..."


def apply_patch(links: tuple[RdLink, ...], patch: LinkPatch) -> tuple[RdLink, ...]:
    """The links after ``patch``, or RdError (4.00) naming the first thing that does not
    fit; ``links`` itself is never changed."""
    targets = {link.target for link in links}
    for href in patch.remove:
        if href not in targets:
            raise bad_request(f"no link <{_short(href)}> to remove")
    gone = frozenset(patch.remove)
    result = [link for link in links if link.target not in gone]
    present = {link.target for link in result}
    for link in patch.add:
        if link.target in present:
            raise bad_request(f"link <{_short(link.target)}> is already registered "
                              "(change it with update)")
        present.add(link.target)
        result.append(link)
    by_href: dict[str, tuple[AttributeChange, ...]] = {}
    for href, changes in patch.update:
        if href not in present:
            raise bad_request(f"no link <{_short(href)}> to update")
        by_href[href] = by_href.get(href, ()) + changes
    if by_href:
        result = [RdLink(link.target, _changed(link.params, by_href[link.target]))
                  if link.target in by_href else link for link in result]
    return tuple(result)


def _changed(params: LinkParams, changes: tuple[AttributeChange, ...]) -> LinkParams:
    out = list(params)
    for change in changes:
        out = [(n, v) for n, v in out if n != change.name]
        if change.value is True:
            out.append((change.name, None))
        elif isinstance(change.value, str):
            out.append((change.name, change.value))
    return tuple(out)
