"""The callback endpoint the SCEF posts notifications to (``notificationDestination``).

It lives on the product's HTTP server at ``/nidd/v1/callbacks/<secret>``: the secret in
the path is what authenticates the SCEF (an SCEF cannot add headers of ours to its
notifications, and the URI is only ever given to it), compared in constant time before any
of the body is read; a wrong one is 401. Each of the five notification types is handled:

* NiddUplinkDataNotification: a CoAP packet from a device, fed to the NIDD transport, if
  the configuration is ours and is the device's (or its group's), the data is base64 and
  fits the packet size, and the device's uplink quota allows it (else dropped, counted);
* NiddDownlinkDataDeliveryStatusNotification: the outcome of a pending delivery;
* GmdNiddDownlinkDataDeliveryNotification: per-member outcomes of a group delivery;
* NiddConfigurationStatusNotification: a configuration ended (it is made again);
* ManagePortNotification: logged.

Bad ones get a ProblemDetails naming what is wrong (never echoing the input) and count as
refusals (``lwm2m_refusals{reason="nidd-..."}``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from aiolwm2m.log_throttle import LogThrottle

from . import t8_model as m
from .t8_fields import T8FormatError

if TYPE_CHECKING:
    from .service import NiddService

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any] | None]
NO_CONTENT: Answer = (204, None)


def problem(status: int, title: str, detail: str, *, cause: str | None = None,
            param: str | None = None, reason: str | None = None) -> Answer:
    invalid = (m.InvalidParam(param, reason),) if param is not None else None
    return status, m.problem(status, title, detail, cause=cause, invalid=invalid).to_json()


class CallbackHandler:
    def __init__(self, service: NiddService) -> None:
        self.service = service
        self._log = LogThrottle(log, interval=10.0, burst=5)

    def _refused(self, reason: str, detail: str) -> None:
        self.service.server.refusals.refused(transport="nidd", reason=reason, detail=detail,
                                             peer="scef")

    def handle(self, raw: bytes) -> Answer:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            self._refused("nidd-bad-callback", "callback body is not JSON")
            return problem(400, "Bad Request", "the body is not JSON",
                           cause="INVALID_MSG_FORMAT")
        try:
            note = m.parse_notification(body)
        except T8FormatError as e:
            reason = "nidd-bad-data" if e.param == "/data" else "nidd-bad-callback"
            self._refused(reason, f"callback body: {e}")
            return problem(400, "Bad Request", "the notification does not follow the schema",
                           cause="INVALID_MSG_FORMAT", param=e.param, reason=e.reason)
        if isinstance(note, m.NiddUplinkDataNotification):
            return self.uplink(note)
        if isinstance(note, m.NiddDownlinkDataDeliveryStatusNotification):
            self.service.delivery_status(note.niddDownlinkDataTransfer, note.deliveryStatus)
            return NO_CONTENT
        if isinstance(note, m.GmdNiddDownlinkDataDeliveryNotification):
            self.service.groups.on_results(note)
            return NO_CONTENT
        if isinstance(note, m.NiddConfigurationStatusNotification):
            return self.configuration_status(note)
        self._log.info("ports", "ManagePort notification for %s: %s",
                       note.externalId or note.msisdn,
                       [p.appId for p in note.managedPorts or ()])
        return NO_CONTENT

    def uplink(self, note: m.NiddUplinkDataNotification) -> Answer:
        service = self.service
        entry = service.configurations.by_url.get(note.niddConfiguration)
        ident = note.externalId or note.msisdn or ""
        if entry is None:
            self._refused("nidd-unknown-configuration",
                          f"uplink from {ident} for a configuration that is not ours")
            return problem(404, "Not Found", "no such NIDD configuration",
                           cause="RESOURCE_NOT_FOUND")
        if entry.is_group:
            if not service.learn_member(ident, entry):
                self._refused("nidd-too-many-members", f"uplink from {ident}: the group "
                              "member table is full")
                return problem(503, "Service Unavailable", "too many group members")
        elif ident != entry.target:
            self._refused("nidd-wrong-ue", f"uplink from {ident} through the configuration "
                          f"of {entry.target}")
            return problem(403, "Forbidden", "the UE is not the configuration's",
                           cause="UE_NOT_AUTHORIZED")
        limit = service.uplink_limit(entry)
        if len(note.data) > limit:
            self._refused("nidd-oversized", f"uplink of {len(note.data)} bytes from {ident} "
                          f"(at most {limit})")
            return problem(413, "Content Too Large", f"the data is larger than {limit} bytes")
        refused = service.uplink_quota(ident, len(note.data))
        if refused is not None:
            self._refused(f"nidd-quota-uplink-{refused}",
                          f"uplink of {len(note.data)} bytes from {ident} over its quota")
            return NO_CONTENT  # the SCEF did its part; the packet is dropped here
        service.endpoint.receive((ident, 0), note.data)
        return NO_CONTENT

    def configuration_status(self, note: m.NiddConfigurationStatusNotification) -> Answer:
        entry = self.service.configurations.by_url.get(note.niddConfiguration)
        if entry is None:
            self._refused("nidd-unknown-configuration", "status notification for a "
                          "configuration that is not ours")
            return problem(404, "Not Found", "no such NIDD configuration",
                           cause="RESOURCE_NOT_FOUND")
        if note.status != m.ACTIVE:
            self.service.configurations.lost(entry, note.status)
        return NO_CONTENT
