"""The data types of the T8 NIDD API (3GPP TS 29.122 clause 5.6, ``TS29122_NIDD.yaml``).

Only the attributes the schema defines, under the names the schema gives them (camelCase,
as they travel), so that a body and the object it parses to read the same. Every type
parses with :meth:`T8Object.from_json`, which checks what the schema says (types, ranges,
required attributes, the ``oneOf`` between identifiers) and raises
:class:`~.t8_fields.T8FormatError` with the JSON Pointer of the first problem; attributes
the schema does not name are ignored, as the schema allows. :meth:`T8Object.to_json` gives
the body, without absent attributes.

``Bytes`` attributes (``data``) hold the decoded bytes; ``DateTime`` attributes hold the
RFC 3339 text (see :func:`~.t8_fields.format_date_time`). Enumerations are open strings in
the schema (``anyOf`` an enum or any string), so they are kept as text, with the values
the standard defines as constants below.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Final, Self

from . import t8_fields as f
from .t8_fields import Parser, T8FormatError


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: An attribute a merge-patch leaves alone (as opposed to None, JSON null, which removes it).
UNSET: Final[Any] = _Unset()

# -- enumerations -----------------------------------------------------------------------------

SUCCESS = "SUCCESS"
SUCCESS_NEXT_HOP_ACKNOWLEDGED = "SUCCESS_NEXT_HOP_ACKNOWLEDGED"
SUCCESS_NEXT_HOP_UNACKNOWLEDGED = "SUCCESS_NEXT_HOP_UNACKNOWLEDGED"
SUCCESS_ACKNOWLEDGED = "SUCCESS_ACKNOWLEDGED"
SUCCESS_UNACKNOWLEDGED = "SUCCESS_UNACKNOWLEDGED"
TRIGGERED = "TRIGGERED"
BUFFERING = "BUFFERING"
BUFFERING_TEMPORARILY_NOT_REACHABLE = "BUFFERING_TEMPORARILY_NOT_REACHABLE"
SENDING = "SENDING"
FAILURE = "FAILURE"
FAILURE_RDS_DISABLED = "FAILURE_RDS_DISABLED"
FAILURE_NEXT_HOP = "FAILURE_NEXT_HOP"
FAILURE_TIMEOUT = "FAILURE_TIMEOUT"
FAILURE_TEMPORARILY_NOT_REACHABLE = "FAILURE_TEMPORARILY_NOT_REACHABLE"

#: DeliveryStatus values meaning the data is still on its way (kept pending), and those
#: meaning it will never arrive. Anything else starting with SUCCESS is delivered; an
#: unknown value is treated as pending until the delivery's own deadline.
PENDING_STATUSES: Final = frozenset({TRIGGERED, BUFFERING, BUFFERING_TEMPORARILY_NOT_REACHABLE,
                                     SENDING})


def is_failure(status: str) -> bool:
    return status.startswith("FAILURE")


def is_success(status: str) -> bool:
    return status.startswith("SUCCESS")


WAIT_FOR_UE = "WAIT_FOR_UE"
INDICATE_ERROR = "INDICATE_ERROR"
SEND_TRIGGER = "SEND_TRIGGER"

ACTIVE = "ACTIVE"
TERMINATED_UE_NOT_AUTHORIZED = "TERMINATED_UE_NOT_AUTHORIZED"
TERMINATED = "TERMINATED"
RDS_PORT_UNKNOWN = "RDS_PORT_UNKNOWN"

# -- machinery ----------------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    if isinstance(value, T8Object):
        return value.to_json()
    if isinstance(value, bytes):
        return f.encode_bytes(value)
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    return value


class T8Object:
    """Base of the T8 types: frozen dataclasses named as the schema names them."""

    #: attribute name -> parser of its JSON value
    _parsers: ClassVar[dict[str, Parser]] = {}
    _required: ClassVar[tuple[str, ...]] = ()
    #: exactly one of these attributes must be present (the schema's ``oneOf``)
    _one_of: ClassVar[tuple[str, ...]] = ()
    #: attributes that may be JSON null (merge-patch types only)
    _nullable: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if value is UNSET or (value is None and field.name not in self._nullable):
                continue
            out[field.name] = _dump(value)
        return out

    @classmethod
    def from_json(cls, value: Any, where: str = "") -> Self:
        if not isinstance(value, dict):
            raise T8FormatError(where, "expected a JSON object")
        kwargs: dict[str, Any] = {}
        for name, parse in cls._parsers.items():
            if name not in value:
                continue
            raw = value[name]
            if raw is None:
                if name not in cls._nullable:
                    raise T8FormatError(f"{where}/{name}", "must not be null")
                kwargs[name] = None
            else:
                kwargs[name] = parse(raw, f"{where}/{name}")
        for name in cls._required:
            if name not in kwargs:
                raise T8FormatError(f"{where}/{name}", "is required")
        if cls._one_of:
            present = [n for n in cls._one_of if n in kwargs]
            if len(present) != 1:
                raise T8FormatError(where, "exactly one of " + ", ".join(cls._one_of)
                                    + (" is needed" if not present else " may be given"))
        return cls(**kwargs)

    @classmethod
    def parser(cls) -> Parser:
        return cls.from_json


def array_of(item: Parser, min_items: int = 1) -> Parser:
    def parse(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise T8FormatError(where, "expected an array")
        if len(value) < min_items:
            raise T8FormatError(where, f"needs at least {min_items} item(s)")
        if len(value) > f.MAX_ITEMS:
            raise T8FormatError(where, f"more than {f.MAX_ITEMS} items")
        return tuple(item(v, f"{where}/{i}") for i, v in enumerate(value))
    return parse


def _date_time_text(value: Any, where: str) -> str:
    f.date_time(value, where)
    return str(value)


# -- TS 29.122 CommonData / TS 29.571 types used by NIDD ----------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InvalidParam(T8Object):
    param: str
    reason: str | None = None

    _parsers = {"param": f.text, "reason": f.text}
    _required = ("param",)


@dataclasses.dataclass(frozen=True, slots=True)
class ProblemDetails(T8Object):
    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    instance: str | None = None
    cause: str | None = None
    invalidParams: tuple[InvalidParam, ...] | None = None
    supportedFeatures: str | None = None

    _parsers = {"type": f.text, "title": f.text, "status": f.any_int, "detail": f.text,
                "instance": f.text, "cause": f.text,
                "invalidParams": array_of(InvalidParam.from_json),
                "supportedFeatures": f.supported_features}


@dataclasses.dataclass(frozen=True, slots=True)
class Acknowledgement(T8Object):
    details: str

    _parsers = {"details": f.text}
    _required = ("details",)


@dataclasses.dataclass(frozen=True, slots=True)
class WebsockNotifConfig(T8Object):
    websocketUri: str | None = None
    requestWebsocketUri: bool | None = None

    _parsers = {"websocketUri": f.link, "requestWebsocketUri": f.boolean}


# -- NIDD types ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RdsPort(T8Object):
    portUE: int
    portSCEF: int

    _parsers = {"portUE": f.port, "portSCEF": f.port}
    _required = ("portUE", "portSCEF")


@dataclasses.dataclass(frozen=True, slots=True)
class NiddDownlinkDataTransfer(T8Object):
    data: bytes
    externalId: str | None = None
    externalGroupId: str | None = None
    msisdn: str | None = None
    self: str | None = None
    reliableDataService: bool | None = None
    rdsPort: RdsPort | None = None
    maximumLatency: int | None = None
    priority: int | None = None
    pdnEstablishmentOption: str | None = None
    deliveryStatus: str | None = None
    requestedRetransmissionTime: str | None = None

    _parsers = {"externalId": f.external_id, "externalGroupId": f.external_id,
                "msisdn": f.msisdn, "self": f.link, "data": f.data_bytes,
                "reliableDataService": f.boolean, "rdsPort": RdsPort.from_json,
                "maximumLatency": f.duration_sec, "priority": f.any_int,
                "pdnEstablishmentOption": f.text, "deliveryStatus": f.text,
                "requestedRetransmissionTime": _date_time_text}
    _required = ("data",)
    _one_of = ("externalId", "msisdn", "externalGroupId")


@dataclasses.dataclass(frozen=True, slots=True)
class NiddConfiguration(T8Object):
    notificationDestination: str
    self: str | None = None
    supportedFeatures: str | None = None
    mtcProviderId: str | None = None
    externalId: str | None = None
    msisdn: str | None = None
    externalGroupId: str | None = None
    duration: str | None = None
    reliableDataService: bool | None = None
    rdsPorts: tuple[RdsPort, ...] | None = None
    pdnEstablishmentOption: str | None = None
    requestTestNotification: bool | None = None
    websockNotifConfig: WebsockNotifConfig | None = None
    maximumPacketSize: int | None = None
    niddDownlinkDataTransfers: tuple[NiddDownlinkDataTransfer, ...] | None = None
    status: str | None = None

    _parsers = {"self": f.link, "supportedFeatures": f.supported_features,
                "mtcProviderId": f.text, "externalId": f.external_id, "msisdn": f.msisdn,
                "externalGroupId": f.external_id, "duration": _date_time_text,
                "reliableDataService": f.boolean, "rdsPorts": array_of(RdsPort.from_json),
                "pdnEstablishmentOption": f.text, "notificationDestination": f.link,
                "requestTestNotification": f.boolean,
                "websockNotifConfig": WebsockNotifConfig.from_json,
                "maximumPacketSize": f.positive_int,
                "niddDownlinkDataTransfers": array_of(NiddDownlinkDataTransfer.from_json),
                "status": f.text}
    _required = ("notificationDestination",)
    _one_of = ("externalId", "msisdn", "externalGroupId")

    @property
    def target(self) -> str:
        """The identifier the configuration is for, whichever kind it is."""
        return self.externalId or self.msisdn or self.externalGroupId or ""


@dataclasses.dataclass(frozen=True, slots=True)
class NiddConfigurationPatch(T8Object):
    """A JSON merge-patch of a configuration: None (null) removes an attribute, UNSET
    leaves it as it is."""

    duration: str | None = UNSET
    reliableDataService: bool | None = UNSET
    rdsPorts: tuple[RdsPort, ...] = UNSET
    pdnEstablishmentOption: str | None = UNSET
    notificationDestination: str = UNSET

    _parsers = {"duration": _date_time_text, "reliableDataService": f.boolean,
                "rdsPorts": array_of(RdsPort.from_json), "pdnEstablishmentOption": f.text,
                "notificationDestination": f.link}
    _nullable = frozenset({"duration", "reliableDataService", "pdnEstablishmentOption"})


@dataclasses.dataclass(frozen=True, slots=True)
class NiddDownlinkDataTransferPatch(T8Object):
    data: bytes | None = None
    reliableDataService: bool | None = None
    rdsPort: RdsPort | None = None
    maximumLatency: int | None = None
    priority: int | None = None
    pdnEstablishmentOption: str | None = None

    _parsers = {"data": f.data_bytes, "reliableDataService": f.boolean,
                "rdsPort": RdsPort.from_json, "maximumLatency": f.duration_sec,
                "priority": f.any_int, "pdnEstablishmentOption": f.text}


@dataclasses.dataclass(frozen=True, slots=True)
class NiddUplinkDataNotification(T8Object):
    niddConfiguration: str
    data: bytes
    externalId: str | None = None
    msisdn: str | None = None
    reliableDataService: bool | None = None
    rdsPort: RdsPort | None = None

    _parsers = {"niddConfiguration": f.link, "externalId": f.external_id,
                "msisdn": f.msisdn, "data": f.data_bytes, "reliableDataService": f.boolean,
                "rdsPort": RdsPort.from_json}
    _required = ("niddConfiguration", "data")
    _one_of = ("externalId", "msisdn")


@dataclasses.dataclass(frozen=True, slots=True)
class NiddDownlinkDataDeliveryStatusNotification(T8Object):
    niddDownlinkDataTransfer: str
    deliveryStatus: str
    requestedRetransmissionTime: str | None = None

    _parsers = {"niddDownlinkDataTransfer": f.link, "deliveryStatus": f.text,
                "requestedRetransmissionTime": _date_time_text}
    _required = ("niddDownlinkDataTransfer", "deliveryStatus")


@dataclasses.dataclass(frozen=True, slots=True)
class NiddConfigurationStatusNotification(T8Object):
    niddConfiguration: str
    status: str
    externalId: str | None = None
    msisdn: str | None = None
    rdsCapIndication: bool | None = None
    rdsPort: RdsPort | None = None

    _parsers = {"niddConfiguration": f.link, "externalId": f.external_id,
                "msisdn": f.msisdn, "status": f.text, "rdsCapIndication": f.boolean,
                "rdsPort": RdsPort.from_json}
    _required = ("niddConfiguration", "status")
    _one_of = ("externalId", "msisdn")


@dataclasses.dataclass(frozen=True, slots=True)
class GmdResult(T8Object):
    deliveryStatus: str
    externalId: str | None = None
    msisdn: str | None = None
    requestedRetransmissionTime: str | None = None

    _parsers = {"externalId": f.external_id, "msisdn": f.msisdn, "deliveryStatus": f.text,
                "requestedRetransmissionTime": _date_time_text}
    _required = ("deliveryStatus",)
    _one_of = ("externalId", "msisdn")


@dataclasses.dataclass(frozen=True, slots=True)
class GmdNiddDownlinkDataDeliveryNotification(T8Object):
    niddDownlinkDataTransfer: str
    gmdResults: tuple[GmdResult, ...]

    _parsers = {"niddDownlinkDataTransfer": f.link, "gmdResults": array_of(GmdResult.from_json)}
    _required = ("niddDownlinkDataTransfer", "gmdResults")


@dataclasses.dataclass(frozen=True, slots=True)
class NiddDownlinkDataDeliveryFailure(T8Object):
    problemDetail: ProblemDetails
    requestedRetransmissionTime: str | None = None

    _parsers = {"problemDetail": ProblemDetails.from_json,
                "requestedRetransmissionTime": _date_time_text}
    _required = ("problemDetail",)


@dataclasses.dataclass(frozen=True, slots=True)
class ManagePort(T8Object):
    appId: str
    self: str | None = None
    manageEntity: str | None = None
    skipUeInquiry: bool | None = None
    supportedFormats: tuple[str, ...] | None = None
    configuredFormat: str | None = None

    _parsers = {"self": f.link, "appId": f.text, "manageEntity": f.text,
                "skipUeInquiry": f.boolean, "supportedFormats": array_of(f.text),
                "configuredFormat": f.text}
    _required = ("appId",)


@dataclasses.dataclass(frozen=True, slots=True)
class ManagePortNotification(T8Object):
    niddConfiguration: str
    externalId: str | None = None
    msisdn: str | None = None
    managedPorts: tuple[ManagePort, ...] | None = None

    _parsers = {"niddConfiguration": f.link, "externalId": f.external_id,
                "msisdn": f.msisdn, "managedPorts": array_of(ManagePort.from_json)}
    _required = ("niddConfiguration",)
    _one_of = ("externalId", "msisdn")


Notification = (NiddUplinkDataNotification | NiddDownlinkDataDeliveryStatusNotification
                | NiddConfigurationStatusNotification | GmdNiddDownlinkDataDeliveryNotification
                | ManagePortNotification)


def parse_notification(body: Any) -> Notification:
    """One of the five bodies the SCEF posts to ``notificationDestination`` (the callback's
    ``oneOf``), told apart by the attributes only each one has."""
    if not isinstance(body, dict):
        raise T8FormatError("", "expected a JSON object")
    if "gmdResults" in body:
        return GmdNiddDownlinkDataDeliveryNotification.from_json(body)
    if "niddDownlinkDataTransfer" in body:
        return NiddDownlinkDataDeliveryStatusNotification.from_json(body)
    if "data" in body:
        return NiddUplinkDataNotification.from_json(body)
    if "status" in body:
        return NiddConfigurationStatusNotification.from_json(body)
    if "managedPorts" in body or "niddConfiguration" in body:
        return ManagePortNotification.from_json(body)
    raise T8FormatError("", "not a NIDD notification")


def identifiers(attribute: str, value: str) -> tuple[str | None, str | None, str | None]:
    """(externalId, msisdn, externalGroupId) with ``value`` in the one ``attribute`` names."""
    return (value if attribute == "externalId" else None,
            value if attribute == "msisdn" else None,
            value if attribute == "externalGroupId" else None)


def problem(status: int, title: str, detail: str | None = None, *, cause: str | None = None,
            invalid: tuple[InvalidParam, ...] | None = None) -> ProblemDetails:
    return ProblemDetails(title=title, status=status, detail=detail, cause=cause,
                          invalidParams=invalid)
