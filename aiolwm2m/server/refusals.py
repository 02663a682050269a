"""Every request the server refuses, counted by reason, logged (throttled) with the endpoint
name and emitted as a ``Refused`` event, so an operator sees hijack attempts, wrong
credentials and malformed registrations the moment they happen."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from aiolwm2m.log_throttle import LogThrottle

from .events import Event, Refused

log = logging.getLogger("aiolwm2m.server.refusals")


class Refusals:
    """Counts refusals by reason and reports each one.

    ``reason`` is a short, stable token (``"wrong-identity"``, ``"not-owner"``,
    ``"bad-request"``, ``"dtls-handshake"``...), used as the metrics label; ``detail`` is for
    the operator's log and events only and may name identities, never for the peer."""

    def __init__(self, emit: Callable[[Event], None], *, log_interval: float = 10.0,
                 log_burst: int = 20) -> None:
        self._emit = emit
        self.by_reason: Counter[str] = Counter()
        self._log = LogThrottle(log, interval=log_interval, burst=log_burst)

    def refused(self, *, transport: str, reason: str, endpoint: str | None = None,
                detail: str = "", peer: str | None = None) -> None:
        self.by_reason[reason] += 1
        self._log.warning(reason, "refused %s (%s) on %s from %s: %s",
                          endpoint or "-", reason, transport, peer or "-", detail)
        self._emit(Refused(transport=transport, reason=reason, endpoint=endpoint,
                           detail=detail, peer=peer))
