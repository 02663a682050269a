"""Recording the requests a TCP endpoint's dispatcher is handed (whole messages, blocks)."""

from __future__ import annotations

from typing import Any

from aiolwm2m.coap.message import Message
from aiolwm2m.transport.dispatch import RequestDispatcher
from aiolwm2m.transport.tcp import TcpEndpoint


class _CountingDispatcher:
    """Stands in for the endpoint's dispatcher (which may be a compiled class, whose
    methods cannot be replaced on the instance) and forwards everything to it."""

    def __init__(self, inner: RequestDispatcher, seen: list[Message]) -> None:
        self._inner = inner
        self._seen = seen

    def handle(self, request: Message, now: float) -> None:
        self._seen.append(request)
        self._inner.handle(request, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def count_requests(ep: TcpEndpoint) -> list[Message]:
    seen: list[Message] = []
    ep.dispatcher = _CountingDispatcher(ep.dispatcher, seen)  # type: ignore[assignment]
    return seen
