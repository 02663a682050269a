"""How an image reaches a device: chosen from what the device says it supports
(Firmware Update Protocol Support /5/0/8, Firmware Update Delivery Method /5/0/9) and what
this server offers.

The preference, for ``auto``: pull over the scheme the device registered with (it reaches
the server that way already), then pull over another offered scheme of the same security
(a device that registered over DTLS or TLS never gets a NoSec download: nothing else
protects the image on the way), then push by Block1 Write of /5/0/0 over the registration's
own session.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import BadRequest
from .records import AUTO

#: /5/0/8 values and the schemes they name.
PROTOCOL_SCHEMES = {0: "coap", 1: "coaps", 2: "http", 3: "https", 4: "coap+tcp",
                     5: "coaps+tcp"}
#: The scheme of each of the server's transports.
TRANSPORT_SCHEMES = {"udp": "coap", "dtls": "coaps", "tcp": "coap+tcp", "tls": "coaps+tcp"}
SECURE_SCHEMES = frozenset({"coaps", "coaps+tcp", "https"})
#: Secure schemes where the device authenticates to the server with credentials of its
#: own (over https it checks the server's certificate; the job's token lets it in).
_DEVICE_AUTHENTICATED = frozenset({"coaps", "coaps+tcp"})
PULL_ONLY, PUSH_ONLY, PULL_AND_PUSH = 0, 1, 2
PUSH = "push"
_ORDER = ("coap", "coap+tcp", "coaps", "coaps+tcp", "http", "https")


class NoMethod(Exception):
    """The device and the server have no delivery method in common (the reason says why)."""


def device_schemes(protocols: Iterable[int] | None, transport: str) -> frozenset[str]:
    """The schemes a device pulls over: its /5/0/8 values, or, when it does not say, the
    scheme it registered with."""
    if protocols is None:
        scheme = TRANSPORT_SCHEMES.get(transport)
        return frozenset({scheme} if scheme else ())
    return frozenset(PROTOCOL_SCHEMES[p] for p in protocols if p in PROTOCOL_SCHEMES)


def choose(requested: str, *, transport: str, secure: bool, protocols: Iterable[int] | None,
           delivery: int | None, offered: Iterable[str], credentials: bool = True) -> str:
    """The method to use (a scheme to pull over, or ``push``).

    ``secure``: the device registered over an authenticated session; ``credentials``: the
    server holds credentials it could authenticate with over DTLS/TLS (without them a
    coaps or coaps+tcp download would fail at its handshake); ``delivery``: its /5/0/9 (None: both);
    ``offered``: the schemes this server serves images over now.
    """
    can_pull = delivery in (None, PULL_ONLY, PULL_AND_PUSH)
    can_push = delivery in (None, PUSH_ONLY, PULL_AND_PUSH)
    pulls = device_schemes(protocols, transport)
    served = frozenset(offered)
    if requested != AUTO:
        if requested == PUSH:
            if not can_push:
                raise NoMethod("the device takes no push (/5/0/9 is pull only)")
            return PUSH
        if not can_pull:
            raise NoMethod("the device does not pull (/5/0/9 is push only)")
        if requested not in pulls:
            raise NoMethod(f"the device does not pull over {requested} (it supports "
                           f"{_listing(pulls)})")
        if requested not in served:
            raise NoMethod(f"this server does not serve images over {requested} now")
        if requested in _DEVICE_AUTHENTICATED and not credentials:
            raise NoMethod(f"the device has no credentials here to pull over {requested}")
        return requested
    if can_pull:
        own = TRANSPORT_SCHEMES.get(transport)
        candidates = [s for s in _ORDER if s in pulls and s in served
                      and (s in SECURE_SCHEMES or not secure)
                      and (s not in _DEVICE_AUTHENTICATED or credentials)]
        if own in candidates:
            return own
        if candidates:
            return candidates[0]
    if can_push:
        return PUSH
    raise NoMethod(f"no delivery method in common: the device pulls over {_listing(pulls)}, "
                   f"this server serves {_listing(served)}"
                   + (" (no NoSec download for a device registered securely)"
                      if secure else ""))


def check_requested(method: str) -> None:
    if method != AUTO and method != PUSH and method not in PROTOCOL_SCHEMES.values():
        raise BadRequest(f"method is auto, push or one of {', '.join(_ORDER)}")


def _listing(schemes: Iterable[str]) -> str:
    items = sorted(schemes)
    return ", ".join(items) if items else "nothing"
