"""Uri-Path segments to an LwM2M path, content-format checks and the encoded Content
response, shared by the interfaces."""

from __future__ import annotations

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest, NotAcceptable, NotFound, UnsupportedContentFormat
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.errors import InvalidPath, UnsupportedFormat
from aiolwm2m.lwm2m.formats import COMPOSITE_FORMATS, SUPPORTED_FORMATS, ContentFormat, encode_node
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.nodes import Node
from aiolwm2m.lwm2m.path import LwM2MPath

CF = ContentFormat
PATH_LIST_FORMATS = frozenset({CF.SENML_JSON, CF.SENML_CBOR})


def lwm2m_path(segments: tuple[str, ...]) -> LwM2MPath:
    """``("3", "0", "1")`` -> ``/3/0/1``; anything that is not an LwM2M path is 4.04."""
    if not segments or segments == ("",):
        return LwM2MPath()
    try:
        return LwM2MPath.parse("/" + "/".join(segments))
    except InvalidPath as e:
        raise NotFound(f"no such LwM2M path: {e.reason}") from None


def accepted_format(accept: int | None, default: int) -> int:
    if accept is None:
        return default
    if accept not in SUPPORTED_FORMATS:
        raise NotAcceptable(f"content format {accept} is not supported")
    return accept


def content_response(request: Message, path: LwM2MPath, node: Node, model: ModelRegistry,
                     default_format: int) -> Message:
    """2.05 with ``node`` in the format the request accepts (4.06 if it cannot carry it)."""
    fmt = accepted_format(request.accept, default_format)
    try:
        payload = encode_node(fmt, path, node, model)
    except UnsupportedFormat as e:
        raise NotAcceptable(str(e)) from None
    return request.response(Code.CONTENT, payload, fmt)


def payload_format(content_format: int | None) -> int:
    if content_format is None:
        raise BadRequest("the payload has no Content-Format")
    if content_format not in SUPPORTED_FORMATS:
        raise UnsupportedContentFormat(f"content format {content_format} is not supported")
    return content_format


def composite_accept(accept: int | None, default: int) -> int:
    if accept is None:
        return default
    if accept not in COMPOSITE_FORMATS:
        raise NotAcceptable(f"content format {accept} cannot carry composite values")
    return accept


def path_list_format(content_format: int | None) -> int:
    if content_format not in PATH_LIST_FORMATS:
        raise UnsupportedContentFormat(
            f"a path list must be SenML JSON (110) or SenML CBOR (112), not {content_format}")
    return content_format


def composite_format(content_format: int | None) -> int:
    if content_format not in COMPOSITE_FORMATS:
        raise UnsupportedContentFormat(
            f"content format {content_format} cannot carry composite values")
    return content_format
