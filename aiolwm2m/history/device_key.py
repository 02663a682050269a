"""The text a values store keys a device's values by.

An end device behind a gateway is named ``EndDeviceName("gw-1", "dev1")``, text
``"gw-1/dev1"``; an ordinary device may register the endpoint name ``"gw-1/dev1"`` too, and
must not see (or write into) the end device's values. So the key of an ordinary device has
its ``\\`` and ``/`` escaped, and only an end device's key has an unescaped ``/`` (the one
before its prefix, which cannot hold one): no two devices share a key. Keys are plain
``str`` (what SQLite and the writer's pipe take).
"""

from __future__ import annotations

from aiolwm2m.gateway.names import EndDeviceName


def device_key(endpoint: str) -> str:
    if type(endpoint) is str:
        if "/" not in endpoint and "\\" not in endpoint:
            return endpoint  # almost every name: two scans of a short string
        return _escaped(endpoint)
    if isinstance(endpoint, EndDeviceName):
        return f"{_escaped(endpoint.gateway)}/{endpoint.prefix}"
    return device_key(str(endpoint))


def _escaped(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\/")
