"""What devices answer, notify and send, recorded in the values store.

:meth:`ValueRecorder.response` is called by the server after every request a device
answered (Reads, Read-Composites and Observes record their values); notifications and Sends
arrive as server events. Values carry the device's own time when it gave one (Send, and
notifications or reads in SenML with times), else the server's clock at reception.
Values longer than ``max_value_bytes`` (an Opaque firmware package read back, a long string)
are not kept: counted in ``skipped``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiolwm2m.lwm2m.nodes import Node, TimestampedNodes
from aiolwm2m.lwm2m.operations import (
    CompositeResponse,
    ObserveResponse,
    Operation,
    ReadResponse,
    Response,
)
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.store.records import Registration

from .samples import OBSERVE, READ, SEND, PathValue, node_values, value_size
from .store import ValueStore

log = logging.getLogger(__name__)


class ValueRecorder:
    def __init__(self, store: ValueStore, clock: Callable[[], float],
                 max_value_bytes: int = 4096) -> None:
        self.store = store
        self.clock = clock
        self.max_value_bytes = max_value_bytes
        #: Values not kept for their size.
        self.skipped = 0
        self._unsubscribe: Callable[[], None] | None = None

    def attach(self, subscribe: Callable[[Callable[[Any], None]], Callable[[], None]]
               ) -> None:
        """Listen to the server's events (``server.events.subscribe``)."""
        self._unsubscribe = subscribe(self.event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- sources --------------------------------------------------------------------------

    def response(self, reg: Registration, op: Operation, resp: Response) -> None:
        """A device's answer to ``op``."""
        if not resp.success:
            return
        if isinstance(resp, ObserveResponse):
            self._read(reg.endpoint, OBSERVE, resp)
        elif isinstance(resp, ReadResponse):
            self._read(reg.endpoint, READ, resp)
        elif isinstance(resp, CompositeResponse):
            self._nodes(reg.endpoint, READ, self.clock(), resp.content)

    def event(self, event: Any) -> None:
        """A server event: notifications and Sends carry values. (By name: the server's
        events module imports the server, which imports this.)"""
        name = event.name
        if name == "notification":
            response = event.response
            if isinstance(response, ReadResponse) and response.success:
                self._read(event.registration.endpoint, OBSERVE, response)
        elif name == "send":
            self._timestamped(event.registration.endpoint, SEND, event.values)

    # -- to samples -----------------------------------------------------------------------

    def _read(self, endpoint: str, source: str, resp: ReadResponse) -> None:
        if resp.timestamped:
            self._timestamped(endpoint, source, resp.timestamped)
        elif isinstance(resp, ObserveResponse) and resp.composite is not None:
            self._nodes(endpoint, source, self.clock(), resp.composite)
        elif resp.content is not None:
            self._nodes(endpoint, source, self.clock(), {resp.path: resp.content})

    def _timestamped(self, endpoint: str, source: str, groups: Iterable[TimestampedNodes]
                     ) -> None:
        now = self.clock()
        for group in groups:
            at = group.resolved(now).timestamp
            self._nodes(endpoint, source, now if at is None else at, group.nodes)

    def _nodes(self, endpoint: str, source: str, at: float,
               nodes: Mapping[LwM2MPath, Node]) -> None:
        values: list[PathValue] = []
        for path, node in nodes.items():
            values += node_values(path, node)
        limit = self.max_value_bytes
        if any(value_size(v[2]) > limit for v in values):
            kept = [v for v in values if value_size(v[2]) <= limit]
            self.skipped += len(values) - len(kept)
            values = kept
        if values:
            self.store.record(endpoint, at, source, values)

    async def close(self) -> None:
        self.detach()
        await self.store.close()
