"""Device-management operations as immutable request objects, and their typed responses.

The server API, the REST API, the queue of a sleeping client and (later) the cluster router
all pass these objects around; they become CoAP messages only at the edge
(:mod:`aiolwm2m.lwm2m.coap_mapping`). Each request can be turned into a JSON-ready dict and
back, which is how queued requests survive a restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .attributes import AttributeUpdate, parse_write_attributes
from .errors import InvalidPayload, shown
from .formats import (
    ContentFormat,
    DiscoveredLink,
    decode_composite,
    decode_node,
    encode_composite,
    encode_node,
)
from .nodes import Node, ObjectInstance, TimestampedNodes
from .path import ROOT, LwM2MPath

_SENML_JSON = ContentFormat.SENML_JSON


def _freeze(nodes: Mapping[LwM2MPath, Node]) -> tuple[tuple[LwM2MPath, Node], ...]:
    return tuple(sorted(nodes.items()))


@dataclass(frozen=True, slots=True)
class ReadRequest:
    kind: ClassVar[str] = "read"
    path: LwM2MPath
    format: int | None = None


@dataclass(frozen=True, slots=True)
class DiscoverRequest:
    kind: ClassVar[str] = "discover"
    path: LwM2MPath


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """Write: ``replace=True`` is a PUT (replace), ``False`` a POST (partial update)."""

    kind: ClassVar[str] = "write"
    path: LwM2MPath
    node: Node
    replace: bool = True
    format: int | None = None


@dataclass(frozen=True, slots=True)
class WriteAttributesRequest:
    kind: ClassVar[str] = "write-attributes"
    path: LwM2MPath
    attributes: AttributeUpdate


@dataclass(frozen=True, slots=True)
class ExecuteRequest:
    kind: ClassVar[str] = "execute"
    path: LwM2MPath
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """Create one instance in ``path`` (an object) holding the resources of ``node``, an
    :class:`ObjectInstance`.

    With ``assign_id`` false the payload names the instance (``node.id``) and the client
    creates that one; with ``assign_id`` true the payload carries the resources only (no
    instance level, as LwM2M 1.1 allows) and the client picks the id, which comes back in
    :attr:`CreateResponse.instance_id`.
    """

    kind: ClassVar[str] = "create"
    path: LwM2MPath
    node: Node
    format: int | None = None
    assign_id: bool = False


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    kind: ClassVar[str] = "delete"
    path: LwM2MPath


@dataclass(frozen=True, slots=True)
class ReadCompositeRequest:
    kind: ClassVar[str] = "read-composite"
    paths: tuple[LwM2MPath, ...]
    format: int | None = None
    request_format: int | None = None


@dataclass(frozen=True, slots=True)
class WriteCompositeRequest:
    kind: ClassVar[str] = "write-composite"
    nodes: tuple[tuple[LwM2MPath, Node], ...]
    format: int | None = None

    @classmethod
    def of(
        cls, nodes: Mapping[LwM2MPath, Node], format: int | None = None
    ) -> WriteCompositeRequest:
        return cls(_freeze(nodes), format)


@dataclass(frozen=True, slots=True)
class ObserveRequest:
    kind: ClassVar[str] = "observe"
    path: LwM2MPath
    format: int | None = None


@dataclass(frozen=True, slots=True)
class ObserveCompositeRequest:
    kind: ClassVar[str] = "observe-composite"
    paths: tuple[LwM2MPath, ...]
    format: int | None = None
    request_format: int | None = None


@dataclass(frozen=True, slots=True)
class CancelObservationRequest:
    """Cancel the server's observation of ``path`` (or of the composite ``paths``)."""

    kind: ClassVar[str] = "cancel-observation"
    path: LwM2MPath = ROOT
    paths: tuple[LwM2MPath, ...] = ()


# -- bootstrap interface (server to client, during a bootstrap session) -----------------------


@dataclass(frozen=True, slots=True)
class BootstrapDiscoverRequest:
    kind: ClassVar[str] = "bootstrap-discover"
    path: LwM2MPath = ROOT


@dataclass(frozen=True, slots=True)
class BootstrapReadRequest:
    kind: ClassVar[str] = "bootstrap-read"
    path: LwM2MPath
    format: int | None = None


@dataclass(frozen=True, slots=True)
class BootstrapWriteRequest:
    kind: ClassVar[str] = "bootstrap-write"
    path: LwM2MPath
    node: Node
    format: int | None = None


@dataclass(frozen=True, slots=True)
class BootstrapDeleteRequest:
    kind: ClassVar[str] = "bootstrap-delete"
    path: LwM2MPath = ROOT


@dataclass(frozen=True, slots=True)
class BootstrapFinishRequest:
    kind: ClassVar[str] = "bootstrap-finish"


Operation = (
    ReadRequest
    | DiscoverRequest
    | WriteRequest
    | WriteAttributesRequest
    | ExecuteRequest
    | CreateRequest
    | DeleteRequest
    | ReadCompositeRequest
    | WriteCompositeRequest
    | ObserveRequest
    | ObserveCompositeRequest
    | CancelObservationRequest
    | BootstrapDiscoverRequest
    | BootstrapReadRequest
    | BootstrapWriteRequest
    | BootstrapDeleteRequest
    | BootstrapFinishRequest
)

OPERATION_TYPES: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        ReadRequest,
        DiscoverRequest,
        WriteRequest,
        WriteAttributesRequest,
        ExecuteRequest,
        CreateRequest,
        DeleteRequest,
        ReadCompositeRequest,
        WriteCompositeRequest,
        ObserveRequest,
        ObserveCompositeRequest,
        CancelObservationRequest,
        BootstrapDiscoverRequest,
        BootstrapReadRequest,
        BootstrapWriteRequest,
        BootstrapDeleteRequest,
        BootstrapFinishRequest,
    )
}


# -- responses -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """The outcome of an operation: a CoAP response code and what came with it."""

    code: int
    diagnostic: str = ""
    format: int | None = None

    @property
    def success(self) -> bool:
        return 64 <= self.code < 96

    @property
    def code_text(self) -> str:
        return f"{self.code >> 5}.{self.code & 31:02d}"


@dataclass(frozen=True, slots=True)
class ReadResponse(Response):
    content: Node | None = None
    path: LwM2MPath = ROOT
    timestamped: tuple[TimestampedNodes, ...] = ()
    #: Resource paths in ``content`` the model does not define for the object version the
    #: client announced; their values carry the type the payload gave them.
    unknown: tuple[LwM2MPath, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True, slots=True)
class DiscoverResponse(Response):
    links: tuple[DiscoveredLink, ...] = ()


@dataclass(frozen=True, slots=True)
class CreateResponse(Response):
    location: LwM2MPath | None = None

    @property
    def instance_id(self) -> int | None:
        """The id of the instance created (the client's Location-Path), when it said."""
        location = self.location
        return location[1] if location is not None and len(location) == 2 else None


@dataclass(frozen=True, slots=True)
class CompositeResponse(Response):
    content: Mapping[LwM2MPath, Node] = field(default_factory=dict)
    #: As :attr:`ReadResponse.unknown`.
    unknown: tuple[LwM2MPath, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True, slots=True)
class ObserveResponse(ReadResponse):
    token: bytes = b""
    composite: Mapping[LwM2MPath, Node] | None = None


# -- persistence of requests (queue mode) ----------------------------------------------------


def _node_to_json(path: LwM2MPath, node: Node) -> str:
    return encode_node(_SENML_JSON, path, node).decode("utf-8")


def _node_from_json(path: LwM2MPath, text: str) -> Node:
    return decode_node(_SENML_JSON, text.encode("utf-8"), path)


def operation_to_dict(op: Operation) -> dict[str, Any]:
    """A JSON-ready form of ``op`` (nodes travel as SenML JSON, which keeps their types)."""
    d: dict[str, Any] = {"op": op.kind}
    if isinstance(op, WriteCompositeRequest):
        d["senml"] = encode_composite(_SENML_JSON, dict(op.nodes)).decode("utf-8")
        d["format"] = op.format
        return d
    if isinstance(op, ReadCompositeRequest | ObserveCompositeRequest):
        d["paths"] = [str(p) for p in op.paths]
        d["format"] = op.format
        d["request_format"] = op.request_format
        return d
    if isinstance(op, CancelObservationRequest):
        d["path"] = str(op.path)
        d["paths"] = [str(p) for p in op.paths]
        return d
    if isinstance(op, BootstrapFinishRequest):
        return d
    d["path"] = str(op.path)
    if isinstance(op, CreateRequest) and isinstance(op.node, ObjectInstance):
        # The instance travels at its own path, so that its resources keep their types.
        d["instance_id"] = op.node.id
        d["senml"] = _node_to_json(op.path.child(op.node.id), op.node)
    elif isinstance(op, WriteRequest | CreateRequest | BootstrapWriteRequest):
        d["senml"] = _node_to_json(op.path, op.node)
    if isinstance(op, WriteRequest):
        d["replace"] = op.replace
    if isinstance(op, CreateRequest) and op.assign_id:
        d["assign_id"] = True
    if isinstance(op, WriteAttributesRequest):
        d["query"] = _attributes_query(op.attributes)
    if isinstance(op, ExecuteRequest):
        d["arguments"] = op.arguments
    fmt = getattr(op, "format", None)
    if fmt is not None:
        d["format"] = fmt
    return d


def _attributes_query(update: AttributeUpdate) -> list[str]:
    items = [f"{k}={v}" for k, v in update.set.to_link_params()]
    items.extend(sorted(update.unset))
    return items


def operation_from_dict(d: dict[str, Any]) -> Operation:
    kind = d.get("op")
    cls = OPERATION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidPayload(None, None, f"unknown operation {shown(kind, 24)}")
    fmt = d.get("format")
    if cls is WriteCompositeRequest:
        nodes = decode_composite(_SENML_JSON, d["senml"].encode("utf-8"))
        return WriteCompositeRequest.of(nodes, fmt)
    if cls in (ReadCompositeRequest, ObserveCompositeRequest):
        paths = tuple(LwM2MPath.parse(p) for p in d["paths"])
        result: Operation = cls(paths, fmt, d.get("request_format"))
        return result
    if cls is CancelObservationRequest:
        return CancelObservationRequest(
            LwM2MPath.parse(d.get("path", "/")),
            tuple(LwM2MPath.parse(p) for p in d.get("paths", ())),
        )
    if cls is BootstrapFinishRequest:
        return BootstrapFinishRequest()
    path = LwM2MPath.parse(d["path"])
    if cls is WriteRequest:
        return WriteRequest(
            path, _node_from_json(path, d["senml"]), bool(d.get("replace", True)), fmt
        )
    if cls is CreateRequest:
        iid = d.get("instance_id")
        at = path.child(iid) if isinstance(iid, int) else path
        return CreateRequest(path, _node_from_json(at, d["senml"]), fmt,
                             bool(d.get("assign_id", False)))
    if cls is BootstrapWriteRequest:
        made: Operation = cls(path, _node_from_json(path, d["senml"]), fmt)
        return made
    if cls is WriteAttributesRequest:
        return WriteAttributesRequest(path, parse_write_attributes(d.get("query", [])))
    if cls is ExecuteRequest:
        return ExecuteRequest(path, str(d.get("arguments", "")))
    if cls in (ReadRequest, ObserveRequest, BootstrapReadRequest):
        made = cls(path, fmt)
        return made
    made = cls(path)
    return made


def describe(op: Operation) -> str:
    """A short human-readable form for logs and events: ``read /3/0/1``."""
    d = operation_to_dict(op)
    target = d.get("path") or ",".join(d.get("paths", ()))
    return f"{op.kind} {target}".strip()


def response_to_dict(resp: Response) -> dict[str, Any]:
    """A JSON-ready summary of a response (values as SenML JSON records)."""
    d: dict[str, Any] = {"code": resp.code_text, "diagnostic": resp.diagnostic or None}
    if isinstance(resp, ReadResponse) and resp.content is not None:
        d["senml"] = json.loads(encode_node(_SENML_JSON, resp.path, resp.content))
    if isinstance(resp, CompositeResponse) and resp.content:
        d["senml"] = json.loads(encode_composite(_SENML_JSON, dict(resp.content)))
    if isinstance(resp, ReadResponse | CompositeResponse) and resp.unknown:
        d["unknown"] = [str(p) for p in resp.unknown]
    if isinstance(resp, CreateResponse) and resp.location is not None:
        d["location"] = str(resp.location)
    if isinstance(resp, DiscoverResponse):
        d["links"] = [str(link.to_link()) for link in resp.links]
    return d
