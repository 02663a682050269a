"""Events of the bootstrap server, one series per session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aiolwm2m.event_bus import EventBus, EventStream


@dataclass(frozen=True, slots=True)
class SessionStarted:
    name: ClassVar[str] = "bootstrap-started"
    session_id: str
    endpoint: str
    address: str
    server_initiated: bool


@dataclass(frozen=True, slots=True)
class RequestSent:
    name: ClassVar[str] = "bootstrap-request-sent"
    session_id: str
    endpoint: str
    operation: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RequestAnswered:
    name: ClassVar[str] = "bootstrap-request-answered"
    session_id: str
    endpoint: str
    operation: str
    code: str


@dataclass(frozen=True, slots=True)
class SessionFinished:
    name: ClassVar[str] = "bootstrap-finished"
    session_id: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class SessionFailed:
    name: ClassVar[str] = "bootstrap-failed"
    session_id: str
    endpoint: str
    reason: str


@dataclass(frozen=True, slots=True)
class BootstrapRefused:
    """A Bootstrap-Request (or a secure handshake) the server turned down. ``reason`` is a
    short stable token (``bootstrap-nosec``, ``bootstrap-wrong-identity``,
    ``bootstrap-unknown-endpoint``...); ``detail`` is for the operator and may name
    identities. ``endpoint`` is None when the peer gave no name (a handshake)."""

    name: ClassVar[str] = "bootstrap-refused"
    endpoint: str | None
    reason: str
    detail: str
    transport: str
    peer: str | None = None


BootstrapEvent = (SessionStarted | RequestSent | RequestAnswered | SessionFinished
                  | SessionFailed | BootstrapRefused)


BootstrapEventStream = EventStream


class BootstrapEvents(EventBus[BootstrapEvent]):
    pass
