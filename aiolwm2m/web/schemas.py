"""Request and response bodies of the REST API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    with_config,
)
from typing_extensions import TypedDict

FormatField = Field(None, description="content format: a number or one of text, opaque, cbor, "
                    "tlv, senml-json, senml-cbor, lwm2m-json, lwm2m-cbor; default: chosen "
                    "from the client's registration", examples=["senml-cbor"])


class ObjectLinkOut(BaseModel):
    path: str
    version: str | None = None


class RegistrationOut(BaseModel):
    endpoint: str
    id: str
    address: str
    transport: str
    lifetime: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    awake: bool
    sms: str | None = None
    identity: str | None = None
    registered_at: float
    updated_at: float
    expires_at: float
    root_path: str
    content_formats: list[int]
    objects: list[ObjectLinkOut]
    extra: dict[str, str]
    end_devices: int | None = Field(
        None, description="a gateway (it lists Object 25): how many end devices the server "
        "keeps behind it (GET /api/registrations/{endpoint}/devices)")
    gateway: str | None = Field(None, description="an end device: its gateway's endpoint")
    prefix: str | None = Field(None, description="an end device: its prefix (/25/x/1)")
    device_id: str | None = Field(None, description="an end device: its id (/25/x/0)")


class RegistrationPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[RegistrationOut]


class ResourceInfo(BaseModel):
    id: int
    name: str
    type: str
    operations: str
    multiple: bool
    mandatory: bool
    units: str | None = None
    range: str | None = None
    description: str | None = None


class ObjectInfo(BaseModel):
    id: int
    name: str | None
    version: str | None
    instances: list[int]
    multiple: bool | None = None
    description: str | None = None
    resources: list[ResourceInfo]


@with_config(ConfigDict(extra="forbid"))
class OpaqueValue(TypedDict):
    """An Opaque value: its bytes in base64 (RFC 4648 standard alphabet). Reads always use
    this form; writes also take the URL-safe alphabet, no padding, or ``{"hex": "..."}``. A
    bare string for an Opaque resource is refused (400), since hex and base64 overlap."""

    base64: str


#: A value of any LwM2M type as JSON: Opaque as :class:`OpaqueValue`, Time as epoch
#: seconds, Objlnk as "3:0", the others as JSON scalars.
JsonValue = OpaqueValue | Any


class ValueOut(BaseModel):
    path: str
    name: str | None = None
    type: str
    units: str | None = None
    value: JsonValue = Field(description="Opaque values are {\"base64\": ...}")
    unknown: bool = Field(False, description="present (true) when the object version the "
                          "client announced defines no such resource; the type is then the "
                          "payload's own")

    @model_serializer(mode="wrap")
    def _unknown_only_when_true(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not self.unknown and isinstance(data, dict):
            data.pop("unknown", None)
        return data


class LinkOut(BaseModel):
    path: str
    dim: int | None = None
    version: str | None = None
    attributes: dict[str, float | int]


class OperationResult(BaseModel):
    """What the client answered (``code`` is the CoAP response code, e.g. ``2.05``)."""

    endpoint: str
    operation: str
    code: str
    success: bool
    diagnostic: str | None = None
    format: str | None = None
    content: Any = Field(None, description="the node as {id: ...} down to the values "
                         "(Opaque as {\"base64\": ...})")
    values: list[ValueOut] = []
    links: list[LinkOut] | None = None
    location: str | None = None
    token: str | None = None


class QueuedOut(BaseModel):
    """A request kept for a sleeping (queue-mode) client; poll ``/api/requests/{id}``.
    Delivered at least once, or at most once when ``at_most_once`` (``in-flight`` while it
    is sent; ``failed`` with ``result.outcome == "unknown"`` when the server restarted
    meanwhile)."""

    request_id: str
    endpoint: str
    operation: dict[str, Any]
    state: Literal["pending", "in-flight", "done", "expired", "failed"]
    created_at: float
    expires_at: float
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    at_most_once: bool = False


class PathBody(BaseModel):
    path: str = Field(examples=["/3/0"])
    format: str | int | None = FormatField
    timeout: float | None = Field(None, gt=0, le=600)


class PathsBody(BaseModel):
    paths: list[str] = Field(min_length=1, examples=[["/3/0/0", "/3/0/9"]])
    format: str | int | None = FormatField
    timeout: float | None = Field(None, gt=0, le=600)


class WriteBody(BaseModel):
    path: str = Field(examples=["/3/0/14"])
    value: JsonValue = Field(description="a value for a resource (Opaque as "
                             "{\"base64\": ...}), {id: value} for an instance or a "
                             "multiple resource", examples=["+02:00", {"base64": "QU4="}])
    mode: Literal["replace", "update"] = "replace"
    format: str | int | None = FormatField
    timeout: float | None = Field(None, gt=0, le=600)


class ExecuteBody(BaseModel):
    path: str = Field(examples=["/3/0/4"])
    arguments: str = ""
    timeout: float | None = Field(None, gt=0, le=600)


class CreateBody(BaseModel):
    path: str = Field(examples=["/3303"])
    instance_id: int | None = Field(None, ge=0, le=65534)
    values: dict[str, JsonValue] = Field(examples=[{"5700": 21.5}],
                                         description="{resource id: value}; Opaque as "
                                         "{\"base64\": ...}")
    format: str | int | None = FormatField
    timeout: float | None = Field(None, gt=0, le=600)


class AttributesBody(BaseModel):
    path: str = Field(examples=["/3303/0/5700"])
    set: dict[str, float] = Field(default_factory=dict, examples=[{"pmin": 10, "pmax": 60}])
    unset: list[str] = Field(default_factory=list, examples=[["gt"]])
    timeout: float | None = Field(None, gt=0, le=600)


class CompositeWriteBody(BaseModel):
    values: dict[str, JsonValue] = Field(min_length=1,
                                         examples=[{"/3/0/14": "+01:00",
                                                    "/19/0/0/0": {"base64": "QU4="}}],
                                         description="{path: value}; Opaque as "
                                         "{\"base64\": ...}")
    format: str | int | None = FormatField
    timeout: float | None = Field(None, gt=0, le=600)


class CancelBody(BaseModel):
    path: str | None = None
    paths: list[str] | None = None
    active: bool = True


class ObservationOut(BaseModel):
    token: str
    paths: list[str]
    composite: bool
    format: str | None = Field(None, description="the format asked for (null: the client "
                                                  "chooses)")
    negotiated_format: str | None = Field(None, description="the format the client answered "
                                                            "with; its notifications carry it")
    created_at: float


class SecurityIn(BaseModel):
    """Exactly one of: PSK (identity + hex key), RPK (hex DER SubjectPublicKeyInfo), X.509
    (the certificate name the client must present)."""

    psk_identity: str | None = Field(None, min_length=1, max_length=128)
    psk_key: str | None = Field(None, description="hex", examples=["000102030405060708090a0b"])
    rpk_public_key: str | None = Field(None, description="hex DER SubjectPublicKeyInfo")
    x509_identity: str | None = Field(None, min_length=1, max_length=256)


class SecurityOut(BaseModel):
    endpoint: str
    mode: str
    psk_identity: str | None = None
    rpk_public_key: str | None = None
    x509_identity: str | None = None


class ErrorOut(BaseModel):
    detail: str
