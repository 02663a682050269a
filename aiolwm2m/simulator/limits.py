"""Descriptor limits and where the devices' addresses come from.

A server identifies devices by address, so each simulated device needs one of its own.
Against an IPv4 loopback server every device gets its own 127.x.y.z address behind a few
shared sockets (:mod:`.shared_sockets`): no descriptor per device. Otherwise each device has
a socket on an ephemeral port of the wildcard address (:mod:`.per_device_sockets`), which
needs one descriptor per device: the soft RLIMIT_NOFILE is raised towards the hard limit
(and the hard limit too when the process has CAP_SYS_RESOURCE), and one local address
offers about 28k ephemeral ports.
"""

from __future__ import annotations

import ipaddress
import resource
from pathlib import Path

_HEADROOM = 256


def raise_file_limit(needed: int) -> int:
    """Make at least ``needed`` (+ headroom) descriptors available if possible; returns the
    soft limit now in force."""
    want = needed + _HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        ceiling = _nr_open()
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, ceiling), min(want, ceiling)))
            return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ValueError, OSError):
            want = hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _nr_open() -> int:
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text().strip())
    except (OSError, ValueError):
        return 1 << 20


def uses_shared_sockets(server_host: str) -> bool:
    """Loopback IPv4 servers let devices share sockets (see :mod:`.shared_sockets`)."""
    try:
        ip = ipaddress.ip_address(server_host.strip("[]"))
    except ValueError:
        return False
    return ip.version == 4 and ip.is_loopback


def wildcard_for(server_host: str) -> str:
    """The local address per-device sockets bind to."""
    return "::" if ":" in server_host else "0.0.0.0"
