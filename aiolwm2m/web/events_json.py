"""Server events as JSON objects, for server-sent events and logs."""

from __future__ import annotations

import time
from typing import Any

from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import (
    Event,
    NotificationReceived,
    ObservationEnded,
    QueuedRequestFinished,
    Refused,
    SendReceived,
    Updated,
)

from .formats import leaf_values, node_json


def event_json(server: LwM2MServer, ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ev.name, "time": time.time()}
    reg = getattr(ev, "registration", None)
    if reg is not None:
        out["endpoint"] = reg.endpoint
        out["registration_id"] = reg.id
    if isinstance(ev, Updated):
        out["lifetime"] = ev.registration.lifetime
        out["address"] = f"{ev.registration.address[0]}:{ev.registration.address[1]}"
    if isinstance(ev, NotificationReceived):
        model = server.registry.context(ev.registration).model
        resp = ev.response
        out["paths"] = list(ev.observation.paths)
        out["code"] = resp.code_text
        if resp.composite is not None:
            out["values"] = [v for p, n in sorted(resp.composite.items())
                             for v in leaf_values(p, n, model)]
        else:
            out.update(node_json(resp.path, resp.content, model))
    elif isinstance(ev, SendReceived):
        model = server.registry.context(ev.registration).model
        groups = []
        for group in ev.values:
            values = [v for p, n in sorted(group.nodes.items())
                      for v in leaf_values(p, n, model)]
            groups.append({"timestamp": group.timestamp, "values": values})
        out["groups"] = groups
    elif isinstance(ev, ObservationEnded):
        out["paths"] = list(ev.observation.paths)
        out["reason"] = ev.reason
        out["endpoint"] = ev.observation.endpoint
    elif isinstance(ev, Refused):
        out.update(transport=ev.transport, reason=ev.reason, endpoint=ev.endpoint,
                   detail=ev.detail)
    elif isinstance(ev, QueuedRequestFinished):
        q = ev.request
        out.update(endpoint=q.endpoint, request_id=q.id, state=q.state, result=q.result,
                   operation=q.operation)
    return out
