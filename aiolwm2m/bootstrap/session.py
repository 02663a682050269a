"""One bootstrap session as a state machine (sans-IO).

The plan is: Bootstrap-Discover (when the configuration asks for it), Bootstrap-Delete of
each configured path, Bootstrap-Write of each Security, Server and Access Control instance
and of any other configured instance, then Bootstrap-Finish. The session hands out the
current operation, and is told its response or that it timed out:

* a request without response is sent again, up to ``attempts`` times, then the session fails;
* Discover and Delete errors are recorded and the session goes on (a client may lack an
  object a generic configuration deletes); a failed Write fails the session;
* Finish answered 2.04 ends the session; any other code (4.06 when the client found the
  configuration inconsistent) fails it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiolwm2m.lwm2m.formats import DiscoveredLink
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.node_builder import build_node
from aiolwm2m.lwm2m.operations import (
    BootstrapDeleteRequest,
    BootstrapDiscoverRequest,
    BootstrapFinishRequest,
    BootstrapWriteRequest,
    DiscoverResponse,
    Operation,
    Response,
)
from aiolwm2m.lwm2m.path import ROOT, LwM2MPath

from .configuration import EndpointConfig

BootstrapOperation = (BootstrapDiscoverRequest | BootstrapDeleteRequest | BootstrapWriteRequest
                      | BootstrapFinishRequest)
CONTINUE, DONE, FAILED = "continue", "done", "failed"


def plan(config: EndpointConfig, model: ModelRegistry) -> list[BootstrapOperation]:
    ops: list[BootstrapOperation] = []
    if config.discover:
        ops.append(BootstrapDiscoverRequest(ROOT))
    ops.extend(BootstrapDeleteRequest(p) for p in config.delete)
    writes: list[tuple[LwM2MPath, dict[int, object]]] = []
    writes.extend((LwM2MPath(0, s.instance_id), s.values()) for s in config.security)
    writes.extend((LwM2MPath(1, s.instance_id), s.values()) for s in config.servers)
    writes.extend((LwM2MPath(2, a.instance_id), a.values()) for a in config.acls)
    writes.extend((w.path, dict(w.values)) for w in config.writes)
    for path, values in writes:
        node = build_node(model, path, values)
        ops.append(BootstrapWriteRequest(path, node, config.content_format))
    ops.append(BootstrapFinishRequest())
    return ops


def describe(op: Operation) -> str:
    if isinstance(op, BootstrapFinishRequest):
        return "bootstrap-finish /bs"
    return f"{op.kind} {getattr(op, 'path', '')}"


@dataclass
class BootstrapSession:
    id: str
    endpoint: str
    operations: list[BootstrapOperation]
    attempts: int = 3
    index: int = 0
    tries: int = 0
    answered: int = 0
    outcome: str = CONTINUE
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    discovered: tuple[DiscoveredLink, ...] = ()

    @property
    def current(self) -> BootstrapOperation | None:
        if self.outcome != CONTINUE or self.index >= len(self.operations):
            return None
        return self.operations[self.index]

    def sent(self) -> None:
        self.tries += 1

    def _advance(self) -> str:
        self.index += 1
        self.tries = 0
        return self.outcome

    def _fail(self, reason: str) -> str:
        self.outcome = FAILED
        self.error = reason
        return FAILED

    def on_response(self, response: Response) -> str:
        op = self.current
        assert op is not None, "no operation is outstanding"
        self.answered += 1
        what = describe(op)
        if isinstance(op, BootstrapFinishRequest):
            if response.success:
                self.outcome = DONE
                return self._advance()
            detail = f": {response.diagnostic}" if response.diagnostic else ""
            return self._fail(f"{what} answered {response.code_text}{detail}")
        if response.success:
            if isinstance(response, DiscoverResponse):
                self.discovered = response.links
            return self._advance()
        if isinstance(op, BootstrapDiscoverRequest | BootstrapDeleteRequest):
            self.warnings.append(f"{what} answered {response.code_text}")
            return self._advance()
        detail = f": {response.diagnostic}" if response.diagnostic else ""
        return self._fail(f"{what} answered {response.code_text}{detail}")

    def on_timeout(self, reason: str = "no response") -> str:
        op = self.current
        assert op is not None, "no operation is outstanding"
        if self.tries < self.attempts:
            return CONTINUE
        return self._fail(f"{describe(op)}: {reason} after {self.tries} attempts")

    def on_error(self, reason: str) -> str:
        return self._fail(reason)
