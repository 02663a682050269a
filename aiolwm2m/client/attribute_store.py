"""Notification attributes written by each server (Write-Attributes), and their inheritance.

Attributes belong to the server that wrote them. The effective set for a path is, attribute
by attribute, the deepest level that sets it: the Server object's Default Minimum / Maximum
Period, then object, instance, resource and resource instance.
"""

from __future__ import annotations

from aiolwm2m.lwm2m.attributes import (
    AttributeUpdate,
    NotificationAttributes,
    merge_attributes,
    validate_attributes,
)
from aiolwm2m.lwm2m.model import ResourceModel
from aiolwm2m.lwm2m.path import LwM2MPath

_EMPTY = NotificationAttributes()


class AttributeStore:
    def __init__(self) -> None:
        self._levels: dict[int, dict[LwM2MPath, NotificationAttributes]] = {}

    def level(self, ssid: int, path: LwM2MPath) -> NotificationAttributes:
        return self._levels.get(ssid, {}).get(path, _EMPTY)

    def apply(self, ssid: int, path: LwM2MPath, update: AttributeUpdate,
              resource: ResourceModel | None) -> NotificationAttributes:
        """Apply a Write-Attributes; raises InvalidAttribute (4.00) when the result breaks
        a rule of the TS."""
        new = update.apply_to(self.level(ssid, path))
        validate_attributes(new, path, resource)
        table = self._levels.setdefault(ssid, {})
        if new.is_empty():
            table.pop(path, None)
        else:
            table[path] = new
        return new

    def effective(self, ssid: int, path: LwM2MPath,
                  defaults: NotificationAttributes | None = None) -> NotificationAttributes:
        table = self._levels.get(ssid)
        if not table:
            return defaults or _EMPTY
        levels = [defaults] + [table.get(LwM2MPath(*path[:n])) for n in range(1, len(path) + 1)]
        return merge_attributes(*levels)

    def forget_server(self, ssid: int) -> None:
        self._levels.pop(ssid, None)

    def forget_under(self, prefix: LwM2MPath) -> None:
        """An instance went away: its attributes go with it."""
        for table in self._levels.values():
            for path in [p for p in table if prefix.is_prefix_of(p)]:
                del table[path]
