"""Refused Bootstrap-Requests: each one counted by reason, logged at once (throttled),
emitted as a :class:`~.events.BootstrapRefused` event, handed to the LwM2M server's refusal
counter when the Bootstrap-Server runs beside one (``lwm2m_refusals{reason}``, its
``refused`` events), and kept as a session record, within a budget: anyone can send
Bootstrap-Requests, so a flood of them must not grow the store or the log without bound."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.store.bootstrap_store import REFUSED, BootstrapSessionRecord

from .events import BootstrapEvent, BootstrapRefused

log = logging.getLogger("aiolwm2m.bootstrap.refusals")

#: The reasons (metrics labels). A NoSec request for an endpoint that must authenticate; an
#: authenticated identity that is not the endpoint's; an endpoint without configuration; a
#: request without endpoint name or with a format we do not write; a secure handshake with
#: credentials no configuration has.
NOSEC = "bootstrap-nosec"
WRONG_IDENTITY = "bootstrap-wrong-identity"
UNKNOWN_ENDPOINT = "bootstrap-unknown-endpoint"
BAD_REQUEST = "bootstrap-bad-request"
UNKNOWN_CREDENTIALS = "bootstrap-unknown-credentials"


def printable(endpoint: str | None) -> str | None:
    """An endpoint name as logs show it: a peer chose it, so it may be long or hold line
    breaks; those are shown quoted, escaped and cut at 64 characters."""
    if endpoint is None or (len(endpoint) <= 64 and endpoint.isprintable()):
        return endpoint
    return repr(endpoint[:64])


class RefusalSink(Protocol):
    """Where refusals go besides the Bootstrap-Server's own counters: the LwM2M server's
    ``Refusals`` (``aiolwm2m.server.refusals``), which counts, logs and emits them."""

    def refused(self, *, transport: str, reason: str, endpoint: str | None = None,
                detail: str = "", peer: str | None = None) -> None: ...


class RecordBudget:
    """Which refusals get a session record: at most one per endpoint and reason per
    ``interval``, and at most ``burst`` in all per ``interval`` (names are free to
    invent)."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.burst = burst
        self._window_start = float("-inf")
        self._used = 0
        # (endpoint, reason) -> when its last record was allowed; at most 2 * burst keys.
        self._last: dict[tuple[str, str], float] = {}

    def allow(self, endpoint: str, reason: str, now: float) -> bool:
        if now - self._window_start >= self.interval:
            self._window_start = now
            self._used = 0
            self._last = {ep: t for ep, t in self._last.items() if now - t < self.interval}
        key = (endpoint, reason)
        last = self._last.get(key)
        if (last is not None and now - last < self.interval) or self._used >= self.burst:
            return False
        self._used += 1
        self._last[key] = now
        return True


class BootstrapRefusals:
    def __init__(self, emit: Callable[[BootstrapEvent], None], clock: Callable[[], float], *,
                 record_interval: float, record_burst: int) -> None:
        self._emit = emit
        self._clock = clock
        self.by_reason: Counter[str] = Counter()
        #: Set when an LwM2M server runs beside us: it then logs the refusals too.
        self.sink: RefusalSink | None = None
        self._log = LogThrottle(log, interval=10.0, burst=20)
        self._budget = RecordBudget(record_interval, record_burst)

    def refused(self, *, transport: str, reason: str, endpoint: str | None, detail: str,
                peer: str | None = None) -> BootstrapSessionRecord | None:
        """Report one refusal; returns the session record to store, or None when it has no
        endpoint name or the record budget is spent."""
        self.by_reason[reason] += 1
        shown = printable(endpoint)
        if self.sink is not None:
            self.sink.refused(transport="bootstrap", reason=reason, endpoint=shown,
                              detail=f"{detail} (over {transport})", peer=peer)
        else:
            self._log.warning(reason, "refused bootstrap of %s (%s) on %s from %s: %s",
                              shown or "-", reason, transport, peer or "-", detail)
        self._emit(BootstrapRefused(endpoint, reason, detail, transport, peer))
        now = self._clock()
        if endpoint is None or not self._budget.allow(endpoint, reason, now):
            return None
        return BootstrapSessionRecord(secrets.token_urlsafe(9), endpoint, peer or "-", now,
                                      state=REFUSED, finished_at=now, error=detail,
                                      reason=reason)
