"""Which devices a campaign is for, resolved once, when the campaign is created.

A target specification is a small JSON object of one kind:

* ``{"endpoints": ["dev-1", "dev-2"]}``: these devices, registered now or not (a device
  that never turns up becomes a failed job once the campaign's ``device_wait`` is over);
* ``{"filter": {"endpoint": "sim-*", "object": 5, "object_version": "1.1",
  "attributes": {"binding": "U", "lwm2m_version": "1.1", "<Register query>": "..."}}}``:
  the devices registered now that match every given condition (``endpoint`` is a
  shell-style pattern; ``object`` alone means "lists this object").

* ``{"group": "name"}``: the members of a device group (``server.groups``, issue 15)
  now: its static members, and the registered devices its filter or RD group finds.

Other kinds plug in with :func:`register_kind`; a resolver gets the value and a
:class:`Scope` (the registrations, and whatever else a kind needs from the server).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aiolwm2m.store.records import Registration

from .errors import BadRequest


class Scope(NamedTuple):
    """What resolvers resolve against."""

    registrations: Mapping[str, Registration]
    #: A device group's endpoints now, by group name (NotFound for an unknown group);
    #: None where the server has no groups.
    group_members: Callable[[str], list[str]] | None = None


#: A resolver turns its kind's value into endpoint names.
Resolver = Callable[[Any, Scope], list[str]]
_RESOLVERS: dict[str, Resolver] = {}
#: Endpoints a campaign may target (its jobs are kept in memory and listed by the API).
MAX_TARGETS = 100_000
_ATTRIBUTES = ("binding", "lwm2m_version", "transport", "queue_mode", "sms")


def register_kind(kind: str, resolver: Resolver) -> None:
    """Accept ``{kind: value}`` target specifications, resolved by ``resolver``."""
    _RESOLVERS[kind] = resolver


def kinds() -> list[str]:
    return sorted(_RESOLVERS)


def resolve(spec: Mapping[str, Any], registrations: Mapping[str, Registration],
            group_members: Callable[[str], list[str]] | None = None) -> list[str]:
    """The endpoint names ``spec`` selects (deduplicated, in a stable order)."""
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise BadRequest(f"targets is an object with exactly one of {', '.join(kinds())}")
    ((kind, value),) = spec.items()
    resolver = _RESOLVERS.get(kind)
    if resolver is None:
        raise BadRequest(f"unknown kind of targets {str(kind)[:40]!r}: one of "
                         f"{', '.join(kinds())}")
    endpoints = list(dict.fromkeys(resolver(value, Scope(registrations, group_members))))
    if not endpoints:
        raise BadRequest("the targets select no device")
    if len(endpoints) > MAX_TARGETS:
        raise BadRequest(f"the targets select {len(endpoints)} devices, at most "
                         f"{MAX_TARGETS} per campaign")
    return endpoints


def _endpoint_list(value: Any, scope: Scope) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(e, str) and e for e in value):
        raise BadRequest("endpoints is a list of endpoint names")
    if len(value) > MAX_TARGETS:
        raise BadRequest(f"at most {MAX_TARGETS} endpoints per campaign")
    return value


def _group(value: Any, scope: Scope) -> list[str]:
    if not isinstance(value, str) or not value:
        raise BadRequest("group is the name of a device group")
    if scope.group_members is None:
        raise BadRequest("this server has no device groups")
    return scope.group_members(value)


def _filter(value: Any, scope: Scope) -> list[str]:
    if not isinstance(value, Mapping):
        raise BadRequest("filter is an object")
    unknown = set(value) - {"endpoint", "object", "object_version", "attributes"}
    if unknown:
        raise BadRequest(f"unknown filter fields: {', '.join(sorted(map(str, unknown)))}")
    pattern = value.get("endpoint")
    if pattern is not None and not isinstance(pattern, str):
        raise BadRequest("filter.endpoint is a pattern such as sim-*")
    object_id = value.get("object")
    version = value.get("object_version")
    if version is not None and (object_id is None or not isinstance(version, str)):
        raise BadRequest("filter.object_version needs filter.object and is a string")
    if object_id is not None and (not isinstance(object_id, int) or isinstance(object_id, bool)
                                  or not 0 <= object_id <= 65535):
        raise BadRequest("filter.object is an object id 0..65535")
    attributes = value.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | bool) for k, v in attributes.items()):
        raise BadRequest("filter.attributes maps names to strings")
    out = []
    for name, reg in scope.registrations.items():
        if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
            continue
        if object_id is not None and not _lists(reg, object_id, version):
            continue
        if all(_attribute(reg, k) == _text(v) for k, v in attributes.items()):
            out.append(name)
    return sorted(out)


def _lists(reg: Registration, object_id: int, version: str | None) -> bool:
    entries = [o for o in reg.objects if o.object_id == object_id]
    if not entries:
        return False
    if version is None:
        return True
    announced = reg.object_version(object_id) or "1.0"
    return announced == version


def _attribute(reg: Registration, name: str) -> str | None:
    if name in _ATTRIBUTES:
        return _text(getattr(reg, name))
    for key, value in reg.extra:
        if key == name:
            return value
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


register_kind("endpoints", _endpoint_list)
register_kind("filter", _filter)
register_kind("group", _group)
