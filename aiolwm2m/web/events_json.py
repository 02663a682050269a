"""Server events as JSON objects, for server-sent events and logs."""

from __future__ import annotations

import time
from typing import Any

from aiolwm2m.firmware.events import FirmwareCampaignChanged, FirmwareJobChanged
from aiolwm2m.gateway.directory import end_device_fields
from aiolwm2m.gateway.events import EndDeviceRemoved
from aiolwm2m.gateway.names import EndDeviceName
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.operations import ObserveResponse
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import (
    Event,
    NotificationReceived,
    ObservationEnded,
    QueuedRequestFinished,
    Refused,
    Registered,
    SendReceived,
    Updated,
)
from aiolwm2m.store.records import Registration

from .formats import format_name, leaf_values, node_json


def _where(reg: Registration) -> dict[str, Any]:
    return {"address": f"{reg.address[0]}:{reg.address[1]}", "transport": reg.transport}


def _notification_content(resp: ObserveResponse, model: ModelRegistry) -> dict[str, Any]:
    """``content`` and ``values`` of a notification. A single one's content is the
    observed node; a composite one's maps each observed path to its node, so both carry
    the same values with paths."""
    if resp.composite is None:
        return node_json(resp.path, resp.content, model)
    parts = [(p, node_json(p, n, model)) for p, n in sorted(resp.composite.items())]
    return {"content": {str(p): part["content"] for p, part in parts},
            "values": [v for _, part in parts for v in part["values"]]}


def event_json(server: LwM2MServer, ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ev.name, "time": time.time()}
    reg = getattr(ev, "registration", None)
    if reg is not None:
        out["endpoint"] = reg.endpoint
        out["registration_id"] = reg.id
        if isinstance(reg.endpoint, EndDeviceName):  # behind a gateway: which, and how
            out.update(end_device_fields(reg))
    if isinstance(ev, Registered | Updated):
        out.update(_where(ev.registration), lifetime=ev.registration.lifetime)
    if isinstance(ev, Registered):
        # A Register of a name that was registered ends the old registration: say which.
        old = ev.replaced
        out["replaced"] = None if old is None else {"registration_id": old.id,
                                                    **_where(old)}
    if isinstance(ev, NotificationReceived):
        model = server.registry.context(ev.registration).model
        resp = ev.response
        out["paths"] = list(ev.observation.paths)
        out["code"] = resp.code_text
        out["format"] = format_name(resp.format)
        out["composite"] = resp.composite is not None
        out.update(_notification_content(resp, model))
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
    elif isinstance(ev, EndDeviceRemoved):
        out["reason"] = ev.reason
    elif isinstance(ev, Refused):
        out.update(transport=ev.transport, reason=ev.reason, endpoint=ev.endpoint,
                   detail=ev.detail, peer=ev.peer)
    elif isinstance(ev, QueuedRequestFinished):
        q = ev.request
        out.update(endpoint=q.endpoint, request_id=q.id, state=q.state, result=q.result,
                   operation=q.operation)
    elif isinstance(ev, FirmwareJobChanged):
        job = ev.job.to_dict(steps=False)
        job.pop("token", None)  # the device's download capability, not for listeners
        last = ev.job.steps[-1] if ev.job.steps else None
        out.update(job, endpoint=ev.job.endpoint, job_id=ev.job.id,
                   step=last.to_dict() if last is not None else None)
    elif isinstance(ev, FirmwareCampaignChanged):
        campaign = ev.campaign.to_dict()
        campaign.pop("failure_baseline", None)
        out.update(campaign, campaign_id=ev.campaign.id, counts=ev.counts,
                   progress=ev.progress)
    return out
