"""LwM2M messages as HTTP/2 requests and responses, and back (HTT-001).

A request from the device is an ordinary HTTP request on the same path and query as its
CoAP form (``POST /rd?ep=dev&lt=300&lwm2m=1.1&b=H``); the media type names the content
format, the ``lwm2m-message-id`` header its identity. The answer carries the status the one
table of :mod:`.mapping` gives the CoAP code, the Location of a 2.01 and, for a 5.03 with
Max-Age, ``retry-after``.

Requests from the server travel in envelopes (:mod:`.envelope`); the device answers each
with ``POST /rd/{id}/responses/{identity}`` carrying the response's status in
``lwm2m-status`` and, for an observation, its sequence number in ``lwm2m-observe``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, unquote

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message, split_path
from aiolwm2m.coap.options import OptionNumber, decode_uint, encode_uint

from . import identity as ids
from .envelope import DownlinkRequest
from .mapping import (
    BODYLESS_STATUSES,
    MappingError,
    accepted_format,
    coap_code,
    content_format,
    http_status,
    media_type,
)

STATUS_HEADER: Final = "lwm2m-status"
OBSERVE_HEADER: Final = "lwm2m-observe"
#: Describes the parts of a bundle of answers (see :func:`parse_parts`).
PARTS_HEADER: Final = "lwm2m-parts"
#: Path segments and query items in one request (a CoAP message has no fixed bound; these
#: are far above what LwM2M uses and keep a hostile request's cost small).
MAX_SEGMENTS: Final = 16
MAX_QUERY: Final = 32

_OBSERVE: Final = int(OptionNumber.OBSERVE)
_URI_PATH: Final = int(OptionNumber.URI_PATH)
_CONTENT_FORMAT: Final = int(OptionNumber.CONTENT_FORMAT)
_URI_QUERY: Final = int(OptionNumber.URI_QUERY)
_ACCEPT: Final = int(OptionNumber.ACCEPT)
#: "3/0/1" (one or more segments of digits): an LwM2M path, which needs no escaping.
_NUMERIC_PATH: Final = re.compile(rb"[0-9]+(?:/[0-9]+)*\Z").match
_NUMERIC_TEXT_PATH: Final = re.compile(r"/[0-9]+(?:/[0-9]+)*\Z", re.ASCII).match

_METHODS: Final[dict[str, int]] = {
    "GET": Code.GET, "POST": Code.POST, "PUT": Code.PUT, "DELETE": Code.DELETE,
    "FETCH": Code.FETCH, "PATCH": Code.PATCH, "IPATCH": Code.IPATCH}
_METHOD_NAMES: Final[dict[int, str]] = {v: k for k, v in _METHODS.items()}


class HttpRefusal(Exception):
    """A request that cannot become an LwM2M message: answered with ``status`` and the
    short ``message`` (which never quotes the request at length)."""

    def __init__(self, status: int, message: str, reason: str = "bad-request") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


@dataclass(slots=True)
class HttpRequest:
    stream_id: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    #: An upload (the answer stream): its body arrives over time as
    #: :class:`~.server_core.UploadItems`, not in ``body``.
    streaming: bool = False


@dataclass(slots=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def size(self) -> int:
        return len(self.body) + 64 + sum(len(k) + len(v) for k, v in self.headers)


def split_target(target: str) -> tuple[tuple[str, ...], list[str]]:
    """``/rd/x?ep=a&lt=5`` -> (("rd", "x"), ["ep=a", "lt=5"]), percent-decoded."""
    raw_path, _, raw_query = target.partition("?")
    if not raw_path.startswith("/"):
        raise HttpRefusal(400, "the path must start with /")
    segments = split_path(raw_path) if raw_path != "/" else ()
    if len(segments) > MAX_SEGMENTS:
        raise HttpRefusal(414, f"more than {MAX_SEGMENTS} path segments", "too-large")
    query = [unquote(q) for q in raw_query.split("&") if q] if raw_query else []
    if len(query) > MAX_QUERY:
        raise HttpRefusal(414, f"more than {MAX_QUERY} query parameters", "too-large")
    return segments, query


def join_target(path: tuple[str, ...], query: list[str]) -> str:
    target = "/" + "/".join(quote(s, safe="") for s in path)
    if query:
        target += "?" + "&".join(quote(q, safe="=") for q in query)
    return target


def coap_request(request: HttpRequest, remote: object) -> Message:
    """The CoAP form of an uplink request (HTT-001)."""
    code = _METHODS.get(request.method)
    if code is None:
        raise HttpRefusal(405, "method not allowed")
    segments, query = split_target(request.path)
    msg = Message(MessageType.CON, code, 0, b"", None, request.body, remote)
    msg.uri_path = segments
    if query:
        msg.uri_query = query
    headers = request.headers
    ctype = headers.get("content-type")
    if ctype is not None:
        try:
            msg.content_format = content_format(ctype)
        except MappingError as e:
            raise HttpRefusal(415, str(e), "unsupported-content-format") from None
    accept = headers.get("accept")
    if accept is not None:
        try:
            fmt = accepted_format(accept)
        except MappingError as e:
            raise HttpRefusal(406, str(e), "not-acceptable") from None
        if fmt >= 0:
            msg.accept = fmt
    mid = headers.get(ids.HEADER)
    if mid is not None:
        if not ids.valid_identity(mid):
            raise HttpRefusal(400, f"{ids.HEADER} must be 1-64 base64url characters")
        msg.token = ids.token_of(mid)
    return msg


def http_reply(response: Message, mid: str | None = None) -> HttpReply:
    """The HTTP answer to an uplink request from its CoAP response."""
    try:
        status = http_status(response.code)
    except MappingError:
        status = 500
    headers: list[tuple[str, str]] = []
    body = response.payload
    if status in BODYLESS_STATUSES:
        body = b""
    elif body:
        fmt = response.content_format
        headers.append(("content-type", media_type(fmt if fmt is not None else 42)))
    location = response.location_path
    if location:
        headers.append(("location", join_target(location, response.location_query)))
    if status == 503 and response.max_age is not None:
        headers.append(("retry-after", str(response.max_age)))
    if mid is not None:
        headers.append((ids.HEADER, mid))
    return HttpReply(status, headers, body)


def refusal_reply(refusal: HttpRefusal) -> HttpReply:
    return text_reply(refusal.status, refusal.message)


def text_reply(status: int, text: str) -> HttpReply:
    return HttpReply(status, [("content-type", "text/plain;charset=utf-8")],
                     text.encode()[:256])


# -- downlink: envelopes <-> CoAP requests, answers <-> CoAP responses -----------------------


def downlink_request(msg: Message) -> DownlinkRequest:
    """The envelope form of a server request; its token is its identity. (One pass over
    the options: this runs for every request to a device.)"""
    segments: list[bytes] = []
    query: list[str] = []
    fmt = accept = observe = None
    for number, value in msg.options:
        if number == _URI_PATH:
            segments.append(value)
        elif number == _URI_QUERY:
            query.append(value.decode("utf-8", "replace"))
        elif number == _CONTENT_FORMAT:
            fmt = _uint(value)
        elif number == _ACCEPT:
            accept = _uint(value)
        elif number == _OBSERVE:
            observe = _uint(value)
    # LwM2M paths are numbers: joined as they are (percent-encoding only what needs it).
    joined = b"/".join(segments)
    path = ("/" + joined.decode("ascii") if _NUMERIC_PATH(joined) is not None
            else msg.path)
    return DownlinkRequest(ids.identity_of(msg.token), msg.code, path, tuple(query), fmt,
                           accept, observe, msg.payload)


def _uint(raw: bytes) -> int | None:
    # As Message's typed options: a value over 4 bytes is no number (RFC 7252 5.4.3).
    return None if len(raw) > 4 else decode_uint(raw)


def request_from_downlink(request: DownlinkRequest, remote: object) -> Message:
    # The options are built in ascending number order, as Message keeps them.
    options: list[tuple[int, bytes]] = []
    if request.observe is not None:
        options.append((_OBSERVE, encode_uint(request.observe)))
    path = request.path
    if _NUMERIC_TEXT_PATH(path) is not None:
        options += [(_URI_PATH, s.encode()) for s in path[1:].split("/")]
    else:
        options += [(_URI_PATH, s.encode()) for s in split_path(path)]
    if request.content_format is not None:
        options.append((_CONTENT_FORMAT, encode_uint(request.content_format)))
    if request.query:
        options += [(_URI_QUERY, q.encode()) for q in request.query]
    if request.accept is not None:
        options.append((_ACCEPT, encode_uint(request.accept)))
    return Message(MessageType.CON, request.method, 0, ids.token_of(request.identity),
                   options, request.payload, remote)


def answer_headers(response: Message) -> list[tuple[str, str]]:
    """``lwm2m-status`` (and ``lwm2m-observe``, ``content-type``) of a device's answer."""
    headers = [(STATUS_HEADER, str(http_status(response.code)))]
    if response.observe is not None:
        headers.append((OBSERVE_HEADER, str(response.observe)))
    if response.payload:
        fmt = response.content_format
        headers.append(("content-type", media_type(fmt if fmt is not None else 42)))
    return headers


def response_from_answer(status_text: str | None, observe_text: str | None,
                         content_type: str | None, body: bytes, token: bytes,
                         remote: object) -> Message:
    """The CoAP response a device's answer stands for; raises HttpRefusal (400/415)."""
    if status_text is None or not status_text.isdigit() or len(status_text) != 3:
        raise HttpRefusal(400, f"{STATUS_HEADER} must be a 3-digit HTTP status")
    try:
        code = coap_code(int(status_text))
    except MappingError as e:
        raise HttpRefusal(400, str(e)) from None
    msg = Message(MessageType.ACK, code, 0, token, None, body, remote)
    if observe_text is not None:
        if not observe_text.isdigit() or len(observe_text) > 8 or int(
                observe_text) > 0xFFFFFF:
            raise HttpRefusal(400, f"{OBSERVE_HEADER} must be an integer 0-16777215")
        msg.observe = int(observe_text)
    if content_type is not None and body:
        try:
            msg.content_format = content_format(content_type)
        except MappingError as e:
            raise HttpRefusal(415, str(e), "unsupported-content-format") from None
    return msg


def parse_parts(value: str, count_limit: int) -> list[tuple[str, str, str | None]]:
    """``lwm2m-parts: ID;s=205, ID2;s=204;o=3``: the identity each part of a bundle answers,
    its status and its observe sequence number, in the order of the parts."""
    parts: list[tuple[str, str, str | None]] = []
    for entry in value.split(","):
        fields = [f.strip() for f in entry.split(";")]
        mid = fields[0]
        if not ids.valid_identity(mid):
            raise HttpRefusal(400, f"{PARTS_HEADER}: each part starts with an identity")
        status: str | None = None
        observe: str | None = None
        for f in fields[1:]:
            key, _, val = f.partition("=")
            if key == "s":
                status = val
            elif key == "o":
                observe = val
        if status is None:
            raise HttpRefusal(400, f"{PARTS_HEADER}: each part needs s=<status>")
        parts.append((mid, status, observe))
        if len(parts) > count_limit:
            raise HttpRefusal(413, f"more than {count_limit} parts", "too-large")
    return parts


def format_parts(parts: list[tuple[str, int, int | None]]) -> str:
    return ", ".join(f"{mid};s={status}" + (f";o={obs}" if obs is not None else "")
                     for mid, status, obs in parts)


def method_name(code: int) -> str:
    return _METHOD_NAMES[code]
