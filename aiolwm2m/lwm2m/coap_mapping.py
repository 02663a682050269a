"""Operations <-> CoAP messages, for the side that sends them (server, bootstrap server).

Sans-IO: :func:`encode_request` builds the CoAP request for an operation, and
:func:`decode_response` turns the CoAP response into the operation's typed response.
The :class:`DeviceContext` carries what is known about the client: its model (object
versions pinned from its registration), the formats it prefers, its alternate root path.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message

from .errors import LwM2MError
from .formats import (
    ContentFormat,
    decode_composite,
    decode_discover,
    decode_node,
    decode_timestamped,
    encode_composite,
    encode_create,
    encode_node,
    encode_paths,
)
from .formats.prefixed_names import NAMED_FORMATS, add_prefix, strip_prefix
from .model import ModelRegistry
from .operations import (
    BootstrapDeleteRequest,
    BootstrapDiscoverRequest,
    BootstrapFinishRequest,
    BootstrapReadRequest,
    BootstrapWriteRequest,
    CancelObservationRequest,
    CompositeResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DiscoverRequest,
    DiscoverResponse,
    ExecuteRequest,
    ObserveCompositeRequest,
    ObserveRequest,
    ObserveResponse,
    Operation,
    ReadCompositeRequest,
    ReadRequest,
    ReadResponse,
    Response,
    WriteAttributesRequest,
    WriteCompositeRequest,
    WriteRequest,
)
from .path import ROOT, LwM2MPath
from .unknown_resources import unknown_in_composite, unknown_resource_paths

CF = ContentFormat
# When a 1.1 client lists the formats it supports (ct on its root link), the first of these it
# lists is used; SenML CBOR is the most compact and carries types.
_PREFERRED = (CF.SENML_CBOR, CF.SENML_JSON, CF.LWM2M_CBOR, CF.TLV, CF.LWM2M_JSON)
_COMPOSITE_PREFERRED = (CF.SENML_CBOR, CF.SENML_JSON, CF.LWM2M_CBOR)


@dataclass(frozen=True, slots=True)
class DeviceContext:
    model: ModelRegistry
    format: int = CF.TLV
    composite_format: int = CF.SENML_JSON
    root_path: tuple[str, ...] = ()
    #: ``/{prefix}`` of an end device behind an LwM2M Gateway (``aiolwm2m.gateway``): its
    #: payload names carry it (Gateway TS), and it ends ``root_path``; "" for a device.
    name_prefix: str = ""

    @classmethod
    def for_client(
        cls,
        model: ModelRegistry,
        lwm2m_version: str,
        content_formats: tuple[int, ...] = (),
        root_path: str = "/",
        versions: dict[int, str] | None = None,
    ) -> DeviceContext:
        """Defaults the TS guarantees for this client: TLV for 1.0 (mandatory there); for
        1.1 the preferred format among those it announced, else TLV, which 1.1 clients of
        the field (Anjay, Wakaama, Leshan) all accept."""
        fmt: int = CF.TLV
        composite: int = CF.SENML_JSON
        if lwm2m_version != "1.0":
            for candidate in _PREFERRED:
                if candidate in content_formats:
                    fmt = candidate
                    break
            for candidate in _COMPOSITE_PREFERRED:
                if candidate in content_formats:
                    composite = candidate
                    break
        pinned = model.pinned(versions) if versions else model
        root = tuple(s for s in root_path.strip("/").split("/") if s)
        return cls(pinned, fmt, composite, root)

    def uri_path(self, path: LwM2MPath) -> list[str]:
        return [*self.root_path, *(str(i) for i in path)]


class ResponseDecodeError(LwM2MError):
    """The client's response could not be understood (bad payload or content format)."""


def _single_value_format(ctx: DeviceContext, path: LwM2MPath, fmt: int | None) -> int:
    if fmt is not None:
        return fmt
    return ctx.format


def encode_request(op: Operation, ctx: DeviceContext) -> Message:
    """The CoAP request that carries ``op`` (type CON; token and message id left empty)."""
    msg = _encode_request(op, ctx)
    if ctx.name_prefix:
        _prefix_names(msg, ctx.name_prefix)
    return msg


def _prefix_names(msg: Message, name_prefix: str) -> None:
    """The payload's names as the end device's gateway expects them (with the prefix)."""
    fmt = msg.content_format
    if msg.payload and fmt in NAMED_FORMATS:
        msg.payload = add_prefix(fmt, msg.payload, name_prefix[1:])


def _encode_request(op: Operation, ctx: DeviceContext) -> Message:
    if isinstance(op, ReadRequest | BootstrapReadRequest):
        return Message.request(
            Code.GET,
            ctx.uri_path(op.path),
            accept=op.format if op.format is not None else ctx.format,
        )
    if isinstance(op, DiscoverRequest | BootstrapDiscoverRequest):
        return Message.request(Code.GET, ctx.uri_path(op.path), accept=CF.LINK_FORMAT)
    if isinstance(op, ObserveRequest):
        return Message.request(
            Code.GET,
            ctx.uri_path(op.path),
            observe=0,
            accept=op.format if op.format is not None else ctx.format,
        )
    if isinstance(op, WriteRequest):
        fmt = _single_value_format(ctx, op.path, op.format)
        method = Code.PUT if op.replace else Code.POST
        return Message.request(
            method,
            ctx.uri_path(op.path),
            payload=encode_node(fmt, op.path, op.node, ctx.model),
            content_format=fmt,
        )
    if isinstance(op, BootstrapWriteRequest):
        fmt = op.format if op.format is not None else ctx.format
        return Message.request(
            Code.PUT,
            ctx.uri_path(op.path),
            payload=encode_node(fmt, op.path, op.node, ctx.model),
            content_format=fmt,
        )
    if isinstance(op, WriteAttributesRequest):
        query = [f"{k}={v}" for k, v in op.attributes.set.to_link_params()]
        query.extend(sorted(op.attributes.unset))
        return Message.request(Code.PUT, ctx.uri_path(op.path), query=query)
    if isinstance(op, ExecuteRequest):
        payload = op.arguments.encode("utf-8")
        return Message.request(
            Code.POST,
            ctx.uri_path(op.path),
            payload=payload,
            content_format=CF.TEXT if payload else None,
        )
    if isinstance(op, CreateRequest):
        fmt = op.format if op.format is not None else ctx.format
        return Message.request(
            Code.POST,
            ctx.uri_path(op.path),
            payload=encode_create(fmt, op.path, op.node, assign_id=op.assign_id),
            content_format=fmt,
        )
    if isinstance(op, DeleteRequest | BootstrapDeleteRequest):
        return Message.request(Code.DELETE, ctx.uri_path(op.path))
    if isinstance(op, ReadCompositeRequest | ObserveCompositeRequest):
        req_fmt = op.request_format or ctx.composite_format
        msg = Message.request(
            Code.FETCH,
            ctx.uri_path(ROOT),
            payload=encode_paths(req_fmt, op.paths),
            content_format=req_fmt,
            accept=op.format or ctx.composite_format,
        )
        if isinstance(op, ObserveCompositeRequest):
            msg.observe = 0
        return msg
    if isinstance(op, WriteCompositeRequest):
        fmt = op.format or ctx.composite_format
        return Message.request(
            Code.IPATCH,
            ctx.uri_path(ROOT),
            payload=encode_composite(fmt, dict(op.nodes), ctx.model),
            content_format=fmt,
        )
    if isinstance(op, BootstrapFinishRequest):
        return Message.request(Code.POST, ["bs"])
    if isinstance(op, CancelObservationRequest):
        raise ValueError("cancellation is built from the observation it ends")
    raise TypeError(f"not an operation: {op!r}")


def _diagnostic(msg: Message) -> str:
    if msg.payload and (msg.content_format in (None, 0)):
        return msg.payload.decode("utf-8", "replace")
    return ""


def _payload_format(msg: Message) -> int:
    cf = msg.content_format
    return CF.TEXT if cf is None else cf


def decode_response(op: Operation, msg: Message, ctx: DeviceContext) -> Response:
    """The typed response to ``op`` carried by ``msg``; raises ResponseDecodeError when a
    success response's payload cannot be decoded."""
    code = msg.code
    if not 64 <= code < 96:
        return Response(code, _diagnostic(msg), msg.content_format)
    fmt = _payload_format(msg)
    try:
        if ctx.name_prefix and msg.payload and fmt in NAMED_FORMATS:
            msg = msg.copy()
            msg.payload = strip_prefix(fmt, msg.payload, ctx.name_prefix[1:])
        if isinstance(op, ObserveRequest):
            groups = decode_timestamped(fmt, msg.payload, op.path, ctx.model) if msg.payload else []
            content = groups[-1].nodes.get(op.path) if groups else None
            unknown = () if content is None else unknown_resource_paths(
                op.path, content, ctx.model)
            return ObserveResponse(code, "", fmt, content, op.path, tuple(groups), msg.token,
                                   unknown=unknown)
        if isinstance(op, ReadRequest | BootstrapReadRequest):
            node = decode_node(fmt, msg.payload, op.path, ctx.model) if msg.payload else None
            unknown = () if node is None else unknown_resource_paths(op.path, node, ctx.model)
            return ReadResponse(code, "", fmt, node, op.path, unknown=unknown)
        if isinstance(op, DiscoverRequest | BootstrapDiscoverRequest):
            return DiscoverResponse(code, "", fmt, tuple(decode_discover(msg.payload)))
        if isinstance(op, ObserveCompositeRequest):
            values = decode_composite(fmt, msg.payload, list(op.paths), ctx.model)
            return ObserveResponse(code, "", fmt, None, ROOT, (), msg.token, values,
                                   unknown=unknown_in_composite(values, ctx.model))
        if isinstance(op, ReadCompositeRequest):
            values = decode_composite(fmt, msg.payload, list(op.paths), ctx.model)
            return CompositeResponse(code, "", fmt, values,
                                     unknown=unknown_in_composite(values, ctx.model))
        if isinstance(op, CreateRequest):
            location = _location(msg, ctx)
            return CreateResponse(code, "", msg.content_format, location)
    except LwM2MError as e:
        raise ResponseDecodeError(
            f"cannot decode {msg.code >> 5}.{msg.code & 31:02d} response to {op.kind}: {e}"
        ) from e
    return Response(code, "", msg.content_format)


def _location(msg: Message, ctx: DeviceContext) -> LwM2MPath | None:
    segments = list(msg.location_path)
    if not segments:
        return None
    if ctx.root_path and tuple(segments[: len(ctx.root_path)]) == ctx.root_path:
        segments = segments[len(ctx.root_path) :]
    try:
        return LwM2MPath.parse("/" + "/".join(segments))
    except LwM2MError:
        return None


def cancel_request(
    paths: tuple[LwM2MPath, ...],
    composite: bool,
    token: bytes,
    ctx: DeviceContext,
    content_format: int | None = None,
) -> Message:
    """The GET/FETCH with Observe=1 that actively cancels an observation (RFC 7641 3.6)."""
    if composite:
        req_fmt = ctx.composite_format
        msg = Message.request(
            Code.FETCH,
            ctx.uri_path(ROOT),
            payload=encode_paths(req_fmt, paths),
            content_format=req_fmt,
            observe=1,
            token=token,
        )
    else:
        msg = Message.request(Code.GET, ctx.uri_path(paths[0]), observe=1, token=token)
    if content_format is not None:
        msg.accept = content_format
    msg.mtype = MessageType.CON
    if ctx.name_prefix:
        _prefix_names(msg, ctx.name_prefix)
    return msg


def decode_notification(
    paths: tuple[LwM2MPath, ...], composite: bool, msg: Message, ctx: DeviceContext
) -> ObserveResponse:
    """A notification of an observation (single or composite) as an ObserveResponse."""
    op: Operation = ObserveCompositeRequest(paths) if composite else ObserveRequest(paths[0])
    resp = decode_response(op, msg, ctx)
    if isinstance(resp, ObserveResponse):
        return resp
    return ObserveResponse(
        resp.code, resp.diagnostic, resp.format, None, paths[0] if paths else ROOT, (), msg.token
    )


__all__ = [
    "CancelObservationRequest",
    "DeviceContext",
    "ResponseDecodeError",
    "cancel_request",
    "decode_notification",
    "decode_response",
    "encode_request",
]
