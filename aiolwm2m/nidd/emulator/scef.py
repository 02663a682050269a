"""The SCEF emulator's T8 NIDD logic: configurations, downlink deliveries, uplink data,
RDS ports and group delivery, over emulated UEs.

What it emulates (TS 29.122 clause 4.4.5 and 5.6, TS 23.682 clause 5.13):

* configurations per UE (``externalId``/``msisdn``) or per group (``externalGroupId``), which
  end when their ``duration`` passes (a TERMINATED status notification for per-UE ones);
* MT data: delivered at once (200 SUCCESS) to a reachable UE without latency; else 201 and
  a later status notification: SENDING while the latency runs, BUFFERING while the UE is in
  power saving (or TRIGGERED with SEND_TRIGGER), BUFFERING_TEMPORARILY_NOT_REACHABLE while
  it is unreachable; FAILURE_TIMEOUT once ``maximumLatency`` (or the buffering time) ends;
  INDICATE_ERROR (or ``maximumLatency`` 0) fails at once with 500 instead of buffering;
* 403 DATA_TOO_LARGE above ``maximumPacketSize``, 429 when the downlink rate of the UE (or
  the byte quota of the extension) is spent, 404 for unknown resources;
* MO data from the UE socket, after the latency, to the configuration its RDS ports select
  (static ``rdsPorts`` or ports reserved with ManagePort, OSR-001), else to its only one;
  APN rate control refuses MO data beyond the UE's allowance;
* group delivery: one 201, each member served as above, one
  GmdNiddDownlinkDataDeliveryNotification with every member's result.

Every table is bounded (configurations, deliveries, UEs, buffered packets per UE).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.nidd import t8_fields as f
from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.quota_extension import (
    BYTE_QUOTA_FEATURE,
    QUOTA_EXCEEDED,
    ByteQuota,
    read_quota,
)
from aiolwm2m.nidd.t8_fields import T8FormatError

from .ues import TIME_UNITS, EmulatedUe, UeBehaviour, WindowCounter

log = logging.getLogger(__name__)

FrameSender = Callable[[bytes, Any], None]
#: (destination URL, JSON body, ordering key): notifications with one key arrive in order.
NotificationSender = Callable[[str, dict[str, Any], str], None]


class ScefError(Exception):
    """A T8 error answer: status, body (ProblemDetails unless said otherwise), headers."""

    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 cause: str | None = None, param: str | None = None,
                 body: dict[str, Any] | None = None, media_type: str = "application/problem+json",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        invalid = (m.InvalidParam(param, detail),) if param is not None else None
        self.status = status
        self.body = body if body is not None else m.problem(
            status, title, detail, cause=cause, invalid=invalid).to_json()
        self.media_type = media_type
        self.headers = headers or {}

    @classmethod
    def bad_request(cls, e: T8FormatError) -> ScefError:
        return cls(400, "Bad Request", e.reason, param=e.param, cause="INVALID_MSG_FORMAT")

    @classmethod
    def not_found(cls, what: str) -> ScefError:
        return cls(404, "Not Found", f"no such {what}", cause="RESOURCE_NOT_FOUND")


@dataclass(frozen=True)
class ScefLimits:
    max_configurations: int = 200_000
    max_deliveries: int = 200_000
    max_ues: int = 200_000
    #: MT packets buffered per UE (in power saving or unreachable)
    max_buffered_per_ue: int = 64
    #: How long MT data without ``maximumLatency`` is buffered.
    buffer_time: float = 3600.0


@dataclass(eq=False)
class ConfigRecord:
    id: str
    scs_as_id: str
    config: m.NiddConfiguration
    created: float
    #: wall-clock end of the configuration (None: until deleted)
    expires_at: float | None = None
    ports: dict[tuple[int, int], m.ManagePort] = field(default_factory=dict)
    quota: ByteQuota | None = None
    quota_window: WindowCounter = field(default_factory=WindowCounter)
    quota_used: int = 0
    deliveries: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None

    @property
    def is_group(self) -> bool:
        return self.config.externalGroupId is not None

    def serves(self, ue: EmulatedUe) -> bool:
        c = self.config
        if c.externalGroupId is not None:
            return c.externalGroupId in ue.groups
        return ue.ident in (c.externalId, c.msisdn)

    def routes(self, port_ue: int | None, port_scef: int | None) -> bool | None:
        """True if the RDS ports select this configuration, False if they select none of
        its ports, None if it takes traffic without ports (no static or reserved ports)."""
        pairs = {(p.portUE, p.portSCEF) for p in self.config.rdsPorts or ()} | set(self.ports)
        if not pairs:
            return None
        return (port_ue, port_scef) in pairs


@dataclass(eq=False)
class DeliveryRecord:
    id: str
    config_id: str
    transfer: m.NiddDownlinkDataTransfer
    targets: tuple[str, ...]
    results: dict[str, str] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    finished: bool = False

    @property
    def group(self) -> bool:
        return self.transfer.externalGroupId is not None


def _final(status: str) -> bool:
    return m.is_success(status) or m.is_failure(status)


class Scef:
    def __init__(self, send_frame: FrameSender, notify: NotificationSender, *,
                 limits: ScefLimits | None = None, default_behaviour: UeBehaviour | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.send_frame = send_frame
        self.notify = notify
        self.limits = limits or ScefLimits()
        self.default_behaviour = default_behaviour or UeBehaviour()
        self.clock = clock
        self.configurations: dict[str, ConfigRecord] = {}
        self.deliveries: dict[str, DeliveryRecord] = {}
        self.ues: dict[str, EmulatedUe] = {}
        self.behaviours: dict[str, UeBehaviour] = {}
        self.features = f.feature_bits(BYTE_QUOTA_FEATURE)
        self.quota_attribute = "vendorSpecific-000000"
        self.stats: dict[str, int] = {"mo": 0, "mt": 0, "rejected": 0, "notifications": 0}
        self._log = LogThrottle(log, interval=10.0, burst=10)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # -- UEs ------------------------------------------------------------------------------

    def behaviour_of(self, ident: str) -> UeBehaviour:
        return self.behaviours.get(ident, self.default_behaviour)

    def set_behaviour(self, ident: str, values: dict[str, Any]) -> UeBehaviour:
        """Change how the network treats ``ident`` (control API); a UE that became
        reachable gets what was buffered for it."""
        behaviour = self.behaviour_of(ident).changed(values)
        self.behaviours[ident] = behaviour
        ue = self.ues.get(ident)
        if ue is not None:
            ue.behaviour = behaviour
            if ue.deliverable:
                self._flush_buffer(ue)
        return behaviour

    def _ue(self, ident: str) -> EmulatedUe:
        ue = self.ues.get(ident)
        if ue is None:
            if len(self.ues) >= self.limits.max_ues:
                raise ScefError(503, "Service Unavailable", "too many UEs")
            ue = self.ues[ident] = EmulatedUe(ident, self.behaviour_of(ident))
        return ue

    def on_frame(self, datagram: bytes, address: Any) -> None:
        """A datagram from the UE socket."""
        try:
            frame = ue_link.decode(datagram)
            if frame.kind == ue_link.ATTACH:
                self._attach(frame, address)
            elif frame.kind == ue_link.DETACH:
                ue = self.ues.get(frame.ue)
                if ue is not None and ue.address == address:
                    ue.attached = False
            elif frame.kind == ue_link.MO_DATA:
                self._mo_data(frame, address)
            else:
                raise ue_link.UeLinkError(f"a UE does not send {ue_link.KIND_NAMES[frame.kind]}")
        except (ue_link.UeLinkError, ScefError) as e:
            self._log.info("bad-frame", "UE frame from %s refused: %s", address, e)

    def _attach(self, frame: ue_link.Frame, address: Any) -> None:
        groups = ue_link.groups_of(frame)
        ue = self._ue(frame.ue)
        ue.address = address
        ue.attached = True
        ue.groups = groups
        b = ue.behaviour
        self.send_frame(ue_link.encode(ue_link.Frame(ue_link.ATTACHED, ue.ident, control={
            "maximumPacketSize": b.maximumPacketSize, "apnRateControl": b.apnRateControl,
            "uplinkTimeUnit": b.uplinkTimeUnit, "servingPlmnRateControl": b.apnRateControl})),
            address)
        if ue.deliverable:
            self._flush_buffer(ue)

    def _reject(self, ue: str, address: Any, cause: str, retry_after: float = 0.0) -> None:
        self.stats["rejected"] += 1
        control: dict[str, Any] = {"cause": cause}
        if retry_after:
            control["retryAfter"] = round(retry_after, 3)
        self.send_frame(ue_link.encode(ue_link.Frame(ue_link.REJECT, ue, control=control)),
                        address)

    def _mo_data(self, frame: ue_link.Frame, address: Any) -> None:
        ue = self.ues.get(frame.ue)
        if ue is None or ue.address != address or not ue.attached:
            self._reject(frame.ue, address, "NOT_ATTACHED")
            return
        b = ue.behaviour
        if not b.reachable:
            return  # the radio link is gone: nothing arrives
        if len(frame.data) * 8 > b.maximumPacketSize:
            self._reject(ue.ident, address, "DATA_TOO_LARGE")
            return
        wait = ue.uplink.take(b.apnRateControl, TIME_UNITS.get(b.uplinkTimeUnit, 0.0),
                              self.loop.time())
        if wait:
            self._reject(ue.ident, address, "APN_RATE_CONTROL", wait)
            return
        record = self._route_uplink(ue, frame.port_ue, frame.port_scef)
        if record is None:
            self._reject(ue.ident, address, "NO_CONFIGURATION")
            return
        ue.mo_packets += 1
        self.stats["mo"] += 1
        rds = (m.RdsPort(frame.port_ue, frame.port_scef)
               if frame.port_ue is not None and frame.port_scef is not None else None)
        note = m.NiddUplinkDataNotification(
            niddConfiguration=record.config.self or "", data=frame.data,
            externalId=ue.ident if "@" in ue.ident else None,
            msisdn=None if "@" in ue.ident else ue.ident, rdsPort=rds)
        self._later(b.latency, self._notify, record, note.to_json(), ue.ident)

    def _route_uplink(self, ue: EmulatedUe, port_ue: int | None, port_scef: int | None
                      ) -> ConfigRecord | None:
        fallback: ConfigRecord | None = None
        for record in self.configurations.values():
            if not record.serves(ue):
                continue
            routed = record.routes(port_ue, port_scef)
            if routed:
                return record
            if routed is None and fallback is None:
                fallback = record
        return fallback

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        if delay > 0:
            self.loop.call_later(delay, fn, *args)
        else:
            fn(*args)

    def _notify(self, record: ConfigRecord, body: dict[str, Any], key: str) -> None:
        if self.configurations.get(record.id) is not record:
            return  # deleted meanwhile
        self.stats["notifications"] += 1
        self.notify(record.config.notificationDestination, body, key)

    # -- configurations ---------------------------------------------------------------------

    def _record(self, scs_as_id: str, config_id: str) -> ConfigRecord:
        record = self.configurations.get(config_id)
        if record is None or record.scs_as_id != scs_as_id:
            raise ScefError.not_found("NIDD configuration")
        return record

    def create_configuration(self, scs_as_id: str, body: Any, api_root: str
                             ) -> ConfigRecord:
        try:
            requested = m.NiddConfiguration.from_json(body)
            quota = read_quota(body, self.quota_attribute)
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        if not requested.notificationDestination.startswith(("http://", "https://")):
            raise ScefError(400, "Bad Request", "notificationDestination must be an http(s) URI",
                            param="/notificationDestination")
        if requested.niddDownlinkDataTransfers is not None and len(
                requested.niddDownlinkDataTransfers) > 1:
            raise ScefError(400, "Bad Request", "at most one delivery in a request",
                            param="/niddDownlinkDataTransfers")
        now = self.clock()
        expires = f.date_time(requested.duration, "/duration") if requested.duration else None
        if expires is not None and expires <= now:
            raise ScefError(400, "Bad Request", "duration is in the past", param="/duration")
        if len(self.configurations) >= self.limits.max_configurations:
            raise ScefError(503, "Service Unavailable", "too many NIDD configurations")
        cid = secrets.token_hex(8)
        url = f"{api_root}/3gpp-nidd/v1/{scs_as_id}/configurations/{cid}"
        features = f.common_features(self.features, requested.supportedFeatures)
        negotiated = f.has_feature(features, BYTE_QUOTA_FEATURE)
        behaviour = self.behaviour_of(requested.target) if not requested.externalGroupId else (
            self.default_behaviour)
        config = replace(requested, self=url, status=m.ACTIVE,
                         maximumPacketSize=behaviour.maximumPacketSize,
                         supportedFeatures=features or None,
                         niddDownlinkDataTransfers=None)
        record = ConfigRecord(cid, scs_as_id, config, now, expires,
                              quota=quota if negotiated else None)
        self.configurations[cid] = record
        self._arm_expiry(record)
        if requested.requestTestNotification and not record.is_group:
            self._status_notification(record, m.ACTIVE)
        for transfer in requested.niddDownlinkDataTransfers or ():
            try:
                self.create_delivery(scs_as_id, cid, transfer.to_json(), api_root)
            except ScefError as e:
                self._log.info("initial-delivery", "delivery in a new configuration: %s", e)
        return record

    def represent(self, record: ConfigRecord) -> m.NiddConfiguration:
        pending = [self.deliveries[d].transfer for d in sorted(record.deliveries)
                   if d in self.deliveries]
        return replace(record.config, niddDownlinkDataTransfers=tuple(pending) or None)

    def represent_json(self, record: ConfigRecord) -> dict[str, Any]:
        body = self.represent(record).to_json()
        if record.quota is not None:
            body[self.quota_attribute] = self._quota_report(record).to_json()
        return body

    def _quota_report(self, record: ConfigRecord) -> ByteQuota:
        q = record.quota
        assert q is not None
        self._quota_window(record)
        left = None if q.downlinkBytes is None else max(0, q.downlinkBytes - record.quota_used)
        return replace(q, remainingDownlinkBytes=left)

    def _quota_window(self, record: ConfigRecord) -> None:
        q = record.quota
        if q is not None and self.loop.time() - record.quota_window.started >= q.windowSeconds:
            record.quota_window.started = self.loop.time()
            record.quota_used = 0

    def configurations_of(self, scs_as_id: str) -> list[ConfigRecord]:
        return [r for r in self.configurations.values() if r.scs_as_id == scs_as_id]

    def get_configuration(self, scs_as_id: str, config_id: str) -> ConfigRecord:
        return self._record(scs_as_id, config_id)

    def patch_configuration(self, scs_as_id: str, config_id: str, body: Any) -> ConfigRecord:
        record = self._record(scs_as_id, config_id)
        try:
            patch = m.NiddConfigurationPatch.from_json(body)
            quota = read_quota(body, self.quota_attribute) if isinstance(body, dict) else None
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        config = record.config
        changes: dict[str, Any] = {}
        if patch.duration is not m.UNSET:
            if patch.duration is None:
                record.expires_at = None
            else:
                expires = f.date_time(patch.duration, "/duration")
                if expires <= self.clock():
                    raise ScefError(400, "Bad Request", "duration is in the past",
                                    param="/duration")
                record.expires_at = expires
            changes["duration"] = patch.duration
        for name in ("reliableDataService", "rdsPorts", "pdnEstablishmentOption",
                     "notificationDestination"):
            value = getattr(patch, name)
            if value is not m.UNSET:
                changes[name] = value
        record.config = replace(config, **changes)
        if quota is not None and record.quota is not None:
            record.quota = replace(quota, remainingDownlinkBytes=None)
        self._arm_expiry(record)
        return record

    def delete_configuration(self, scs_as_id: str, config_id: str) -> None:
        record = self._record(scs_as_id, config_id)
        self._remove(record)

    def _remove(self, record: ConfigRecord) -> None:
        self.configurations.pop(record.id, None)
        if record.timer is not None:
            record.timer.cancel()
        for did in list(record.deliveries):
            delivery = self.deliveries.pop(did, None)
            if delivery is not None:
                self._drop_delivery(delivery)

    def _arm_expiry(self, record: ConfigRecord) -> None:
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None
        if record.expires_at is not None:
            delay = max(0.0, record.expires_at - self.clock())
            record.timer = self.loop.call_later(delay, self._expire, record)

    def _expire(self, record: ConfigRecord) -> None:
        if self.configurations.get(record.id) is not record:
            return
        if record.expires_at is not None and record.expires_at > self.clock() + 0.001:
            self._arm_expiry(record)
            return
        log.info("NIDD configuration %s for %s ended (duration)", record.id,
                 record.config.target)
        if not record.is_group:
            self._status_notification(record, m.TERMINATED)
        for did in list(record.deliveries):
            delivery = self.deliveries.get(did)
            if delivery is not None:
                for ue in delivery.targets:
                    if ue not in delivery.results:
                        self._result(delivery, ue, m.FAILURE)
        self._remove(record)

    def _status_notification(self, record: ConfigRecord, status: str) -> None:
        c = record.config
        note = m.NiddConfigurationStatusNotification(
            niddConfiguration=c.self or "", status=status, externalId=c.externalId,
            msisdn=c.msisdn)
        self._notify(record, note.to_json(), c.target)

    # -- RDS ports (ManagePort, OSR-001) -------------------------------------------------------

    def put_port(self, scs_as_id: str, config_id: str, port: str, body: Any, api_root: str
                 ) -> tuple[m.ManagePort, str, bool]:
        record = self._record(scs_as_id, config_id)
        try:
            pair = f.port_id(port, "/portId")
            requested = m.ManagePort.from_json(body)
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        for other in self.configurations.values():
            if other is not record and pair in other.ports and (
                    other.config.target == record.config.target):
                raise ScefError(409, "Conflict", "the port pair is reserved by another "
                                "application", cause="PORT_NOT_FREE")
        url = f"{api_root}/3gpp-nidd/v1/{scs_as_id}/configurations/{config_id}/rds-ports/{port}"
        created = pair not in record.ports
        record.ports[pair] = replace(requested, self=url, manageEntity="AS")
        return record.ports[pair], url, created

    def get_port(self, scs_as_id: str, config_id: str, port: str) -> m.ManagePort:
        record = self._record(scs_as_id, config_id)
        try:
            pair = f.port_id(port, "/portId")
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        found = record.ports.get(pair)
        if found is None:
            raise ScefError.not_found("RDS port configuration")
        return found

    def delete_port(self, scs_as_id: str, config_id: str, port: str) -> None:
        record = self._record(scs_as_id, config_id)
        self.get_port(scs_as_id, config_id, port)
        del record.ports[f.port_id(port, "/portId")]

    # -- MT data ---------------------------------------------------------------------------

    def create_delivery(self, scs_as_id: str, config_id: str, body: Any, api_root: str
                        ) -> tuple[int, m.NiddDownlinkDataTransfer, str | None]:
        """(200 or 201, the resource, its URI for a 201)."""
        record = self._record(scs_as_id, config_id)
        try:
            transfer = m.NiddDownlinkDataTransfer.from_json(body)
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        targets = self._targets(record, transfer)
        if len(transfer.data) * 8 > (record.config.maximumPacketSize or 0):
            raise ScefError(403, "Forbidden", "the data is larger than maximumPacketSize",
                            cause="DATA_TOO_LARGE")
        single = self._ue(targets[0]) if transfer.externalGroupId is None else None
        if single is not None and not single.deliverable:
            option = transfer.pdnEstablishmentOption or record.config.pdnEstablishmentOption
            if option == m.INDICATE_ERROR or transfer.maximumLatency == 0:
                failure = m.NiddDownlinkDataDeliveryFailure(m.problem(
                    500, "Internal Server Error", "the UE has no PDN connection",
                    cause="UE_NOT_REACHABLE"))
                raise ScefError(500, "Internal Server Error", body=failure.to_json(),
                                media_type="application/json")
        self._charge(record, transfer, targets)
        if single is not None and single.deliverable and single.behaviour.latency <= 0 and (
                not single.buffered):
            self._send_mt(single, transfer)
            return 200, replace(transfer, deliveryStatus=m.SUCCESS), None
        if len(self.deliveries) >= self.limits.max_deliveries:
            raise ScefError(503, "Service Unavailable", "too many pending deliveries")
        did = secrets.token_hex(8)
        url = (f"{api_root}/3gpp-nidd/v1/{scs_as_id}/configurations/{config_id}"
               f"/downlink-data-deliveries/{did}")
        delivery = DeliveryRecord(did, config_id, replace(transfer, self=url), targets)
        self.deliveries[did] = delivery
        record.deliveries.add(did)
        wait = transfer.maximumLatency if transfer.maximumLatency else self.limits.buffer_time
        delivery.timer = self.loop.call_later(wait, self._timed_out, delivery)
        statuses = {self._dispatch(delivery, self._ue(t)) for t in targets}
        status = statuses.pop() if len(statuses) == 1 else m.SENDING
        if not delivery.finished:
            delivery.transfer = replace(delivery.transfer, deliveryStatus=status)
        return 201, replace(delivery.transfer, deliveryStatus=status), url

    def _targets(self, record: ConfigRecord, transfer: m.NiddDownlinkDataTransfer
                 ) -> tuple[str, ...]:
        c = record.config
        if transfer.externalGroupId is not None:
            if transfer.externalGroupId != c.externalGroupId:
                raise ScefError(400, "Bad Request", "externalGroupId is not the "
                                "configuration's group", param="/externalGroupId")
            members = tuple(sorted(u.ident for u in self.ues.values()
                                   if transfer.externalGroupId in u.groups))
            if not members:
                failure = m.NiddDownlinkDataDeliveryFailure(m.problem(
                    500, "Internal Server Error", "the group has no members",
                    cause="GROUP_EMPTY"))
                raise ScefError(500, "Internal Server Error", body=failure.to_json(),
                                media_type="application/json")
            return members
        ident = transfer.externalId or transfer.msisdn or ""
        if c.externalGroupId is not None:
            ue = self.ues.get(ident)
            if ue is None or c.externalGroupId not in ue.groups:
                raise ScefError(403, "Forbidden", "the UE is not a member of the "
                                "configuration's group", cause="UE_NOT_IN_GROUP")
        elif ident not in (c.externalId, c.msisdn):
            raise ScefError(400, "Bad Request", "the UE is not the configuration's",
                            param="/externalId" if transfer.externalId else "/msisdn")
        return (ident,)

    def _charge(self, record: ConfigRecord, transfer: m.NiddDownlinkDataTransfer,
                targets: tuple[str, ...]) -> None:
        now = self.loop.time()
        for ident in targets:
            ue = self._ue(ident)
            b = ue.behaviour
            wait = ue.downlink.take(b.downlinkRate, b.downlinkWindow, now)
            if wait and transfer.externalGroupId is None:
                raise ScefError(429, "Too Many Requests", "downlink rate control",
                                cause="TOO_MANY_REQUESTS",
                                headers={"Retry-After": str(max(1, round(wait)))})
        q = record.quota
        if q is not None and q.downlinkBytes is not None:
            self._quota_window(record)
            size = len(transfer.data) * len(targets)
            if record.quota_used + size > q.downlinkBytes:
                left = max(1.0, record.quota_window.started + q.windowSeconds - now)
                raise ScefError(429, "Too Many Requests", "downlink byte quota spent",
                                cause=QUOTA_EXCEEDED, headers={"Retry-After": str(round(left))})
            record.quota_used += size

    def _dispatch(self, delivery: DeliveryRecord, ue: EmulatedUe) -> str:
        """Start delivering to one UE; returns its current status."""
        if ue.deliverable and not ue.buffered:
            self._later(ue.behaviour.latency, self._arrive, delivery, ue.ident)
            return m.SENDING
        if len(ue.buffered) >= self.limits.max_buffered_per_ue:
            self._result(delivery, ue.ident, m.FAILURE)
            return m.FAILURE
        ue.buffered.append(delivery.id)
        if ue.attached and not ue.behaviour.reachable:
            return m.BUFFERING_TEMPORARILY_NOT_REACHABLE
        option = delivery.transfer.pdnEstablishmentOption
        return m.TRIGGERED if option == m.SEND_TRIGGER else m.BUFFERING

    def _flush_buffer(self, ue: EmulatedUe) -> None:
        pending, ue.buffered = list(ue.buffered), type(ue.buffered)()
        delay = ue.behaviour.latency
        for did in pending:
            delivery = self.deliveries.get(did)
            if delivery is not None and ue.ident not in delivery.results:
                self._later(delay, self._arrive, delivery, ue.ident)

    def _arrive(self, delivery: DeliveryRecord, ident: str) -> None:
        """The latency ran out: the data reaches the UE if it still can."""
        if delivery.finished or ident in delivery.results:
            return
        ue = self.ues.get(ident)
        if ue is None or not ue.deliverable:
            if ue is not None and delivery.id not in ue.buffered:
                ue.buffered.append(delivery.id)
            return
        self._send_mt(ue, delivery.transfer)
        self._result(delivery, ident, m.SUCCESS)

    def _send_mt(self, ue: EmulatedUe, transfer: m.NiddDownlinkDataTransfer) -> None:
        ue.mt_packets += 1
        self.stats["mt"] += 1
        rds = transfer.rdsPort
        self.send_frame(ue_link.mt_data(ue.ident, transfer.data,
                                        rds.portUE if rds and rds.portUE <= 15 else None,
                                        rds.portSCEF if rds and rds.portSCEF <= 15 else None),
                        ue.address)

    def _timed_out(self, delivery: DeliveryRecord) -> None:
        for ident in delivery.targets:
            if ident not in delivery.results:
                ue = self.ues.get(ident)
                if ue is not None and delivery.id in ue.buffered:
                    ue.buffered.remove(delivery.id)
                self._result(delivery, ident, m.FAILURE_TIMEOUT)

    def _result(self, delivery: DeliveryRecord, ident: str, status: str) -> None:
        delivery.results[ident] = status
        if len(delivery.results) < len(delivery.targets) or delivery.finished:
            return
        delivery.finished = True
        if delivery.timer is not None:
            delivery.timer.cancel()
        self.deliveries.pop(delivery.id, None)
        record = self.configurations.get(delivery.config_id)
        if record is None:
            return
        record.deliveries.discard(delivery.id)
        url = delivery.transfer.self or ""
        if delivery.group:
            results = tuple(m.GmdResult(deliveryStatus=delivery.results[t],
                                        externalId=t if "@" in t else None,
                                        msisdn=None if "@" in t else t)
                            for t in delivery.targets)
            body = m.GmdNiddDownlinkDataDeliveryNotification(url, results).to_json()
        else:
            body = m.NiddDownlinkDataDeliveryStatusNotification(url, status).to_json()
        self._notify(record, body, delivery.targets[0] if len(delivery.targets) == 1
                     else delivery.id)

    def _drop_delivery(self, delivery: DeliveryRecord) -> None:
        delivery.finished = True
        if delivery.timer is not None:
            delivery.timer.cancel()
        for ident in delivery.targets:
            ue = self.ues.get(ident)
            if ue is not None and delivery.id in ue.buffered:
                ue.buffered.remove(delivery.id)

    def _delivery(self, scs_as_id: str, config_id: str, delivery_id: str) -> DeliveryRecord:
        record = self._record(scs_as_id, config_id)
        delivery = self.deliveries.get(delivery_id)
        if delivery is None or delivery.id not in record.deliveries:
            raise ScefError.not_found("downlink data delivery")
        return delivery

    def pending_deliveries(self, scs_as_id: str, config_id: str
                           ) -> list[m.NiddDownlinkDataTransfer]:
        record = self._record(scs_as_id, config_id)
        return [self.deliveries[d].transfer for d in sorted(record.deliveries)
                if d in self.deliveries]

    def get_delivery(self, scs_as_id: str, config_id: str, delivery_id: str
                     ) -> m.NiddDownlinkDataTransfer:
        return self._delivery(scs_as_id, config_id, delivery_id).transfer

    def replace_delivery(self, scs_as_id: str, config_id: str, delivery_id: str, body: Any,
                         patch: bool) -> m.NiddDownlinkDataTransfer:
        """PUT or PATCH of pending data: only buffered data can still change (409 once it
        is on its way)."""
        delivery = self._delivery(scs_as_id, config_id, delivery_id)
        try:
            if patch:
                changes = m.NiddDownlinkDataTransferPatch.from_json(body)
                new = replace(delivery.transfer, **{
                    k: v for k, v in changes.to_json().items() if k != "data"})
                if changes.data is not None:
                    new = replace(new, data=changes.data)
                if changes.rdsPort is not None:
                    new = replace(new, rdsPort=changes.rdsPort)
            else:
                new = replace(m.NiddDownlinkDataTransfer.from_json(body),
                              self=delivery.transfer.self,
                              deliveryStatus=delivery.transfer.deliveryStatus)
        except T8FormatError as e:
            raise ScefError.bad_request(e) from None
        if delivery.transfer.deliveryStatus == m.SENDING or delivery.results:
            raise ScefError(409, "Conflict", "the data is already on its way",
                            cause="DATA_ALREADY_SENT")
        record = self._record(scs_as_id, config_id)
        if len(new.data) * 8 > (record.config.maximumPacketSize or 0):
            raise ScefError(403, "Forbidden", "the data is larger than maximumPacketSize",
                            cause="DATA_TOO_LARGE")
        delivery.transfer = new
        return new

    def delete_delivery(self, scs_as_id: str, config_id: str, delivery_id: str) -> None:
        delivery = self._delivery(scs_as_id, config_id, delivery_id)
        if delivery.transfer.deliveryStatus == m.SENDING and not delivery.group:
            raise ScefError(409, "Conflict", "the data is already on its way",
                            cause="DATA_ALREADY_SENT")
        self.deliveries.pop(delivery.id, None)
        self._record(scs_as_id, config_id).deliveries.discard(delivery.id)
        self._drop_delivery(delivery)
