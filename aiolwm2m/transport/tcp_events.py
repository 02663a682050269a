"""Connection events of the CoAP-over-TCP/TLS transports, for the LwM2M layer (CoT-002).

Subscribing is optional (CoT-003): with no subscriber, emitting is one truth test. Events of
one connection arrive in order: :class:`Connected` (after the TLS handshake for coaps+tcp),
:class:`CsmReceived` (the peer's limits), possibly :class:`ReleaseReceived`,
:class:`AbortReceived` or :class:`AbortSent`, and last :class:`Disconnected`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiolwm2m.coap.tcp_connection import AbortReceived, AbortSent, CsmReceived, ReleaseReceived

if TYPE_CHECKING:
    from aiolwm2m.security import PeerIdentity

log = logging.getLogger(__name__)

Address = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Connected:
    peer: Address
    scheme: str
    outgoing: bool
    identity: PeerIdentity | None = None


@dataclass(frozen=True, slots=True)
class Disconnected:
    peer: Address
    scheme: str
    reason: str


TcpConnectionEvent = (Connected | CsmReceived | ReleaseReceived | AbortReceived | AbortSent
                      | Disconnected)
ConnectionListener = Callable[[TcpConnectionEvent], None]

__all__ = ["AbortReceived", "AbortSent", "Connected", "ConnectionEvents", "ConnectionListener",
           "CsmReceived", "Disconnected", "ReleaseReceived", "TcpConnectionEvent"]


class ConnectionEvents:
    """The subscribers of one endpoint. A failing subscriber is logged and skipped."""

    def __init__(self) -> None:
        self._listeners: list[ConnectionListener] = []

    def subscribe(self, listener: ConnectionListener) -> Callable[[], None]:
        """Register ``listener``; returns a function that unregisters it."""
        self._listeners.append(listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: ConnectionListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def emit(self, event: TcpConnectionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("connection event listener failed on %r", event)
