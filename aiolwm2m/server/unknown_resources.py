"""Telling the operator about resources a client sent that the model does not define.

Such a value is kept (see :mod:`aiolwm2m.lwm2m.unknown_resources`); the operator should still
learn that a device and the model disagree, once per (object, version, resource) rather than
on every read, and never in a flood a hostile device could cause.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.path import LwM2MPath

log = logging.getLogger("aiolwm2m.server.unknown_resources")


class UnknownResourceLog:
    """Logs each (object, version, resource) the first time a client sends it.

    ``max_keys`` bounds the memory of what was logged (forgotten all at once beyond it, to
    be logged again); the throttle bounds the lines whatever the keys."""

    def __init__(self, *, max_keys: int = 4096, interval: float = 60.0, burst: int = 20
                 ) -> None:
        self._seen: set[tuple[int, str, int]] = set()
        self._max_keys = max_keys
        self._log = LogThrottle(log, interval=interval, burst=burst)

    def report(self, endpoint: str, model: ModelRegistry, paths: Iterable[LwM2MPath]) -> None:
        for path in paths:
            obj = model.get(path[0])
            version = obj.version if obj is not None else "?"
            key = (path[0], version, path[2])
            if key in self._seen:
                continue
            if len(self._seen) >= self._max_keys:
                self._seen.clear()
            self._seen.add(key)
            self._log.warning(
                "unknown-resource",
                "%s sent %s: object %d version %s defines no resource %d; the value is "
                "kept with the type its payload gave it", endpoint, path, path[0], version,
                path[2])
