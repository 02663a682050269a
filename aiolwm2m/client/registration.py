"""The client side of the Registration and Bootstrap-Request messages (sans-IO).

Builds ``POST /rd?ep=..&lt=..&lwm2m=1.1&b=U[&Q]`` (Register), ``POST /rd/{id}`` (Update),
``DELETE /rd/{id}`` (De-register) and ``POST /bs?ep=..[&pct=..]`` (Bootstrap-Request), reads
their responses, and says when the next Update is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.formats import ContentFormat, ObjectEntry, encode_object_list

CF = ContentFormat
#: What this client can encode and decode, announced on the ``rt="oma.lwm2m"`` link.
CLIENT_CONTENT_FORMATS = (CF.CBOR, CF.SENML_JSON, CF.SENML_CBOR, CF.TLV, CF.LWM2M_JSON,
                          CF.LWM2M_CBOR)


class RegistrationRejected(Exception):
    """The server answered a registration request with an error code."""

    def __init__(self, operation: str, code: int, diagnostic: str = "") -> None:
        detail = f": {diagnostic}" if diagnostic else ""
        super().__init__(f"{operation} rejected with {code_str(code)}{detail}")
        self.operation = operation
        self.code = code
        self.diagnostic = diagnostic


@dataclass(frozen=True, slots=True)
class RegistrationParams:
    endpoint: str
    lifetime: int
    binding: str = "U"
    queue_mode: bool = False
    lwm2m_version: str = "1.1"
    sms: str | None = None


def object_links(entries: Iterable[ObjectEntry],
                 content_formats: Iterable[int] = CLIENT_CONTENT_FORMATS) -> bytes:
    return encode_object_list(list(entries), content_formats=content_formats)


def register_request(params: RegistrationParams, links: bytes,
                     base: tuple[str, ...] = ()) -> Message:
    query = [f"ep={params.endpoint}", f"lt={params.lifetime}",
             f"lwm2m={params.lwm2m_version}", f"b={params.binding}"]
    if params.queue_mode:
        query.append("Q")
    if params.sms:
        query.append(f"sms={params.sms}")
    return Message.request(Code.POST, (*base, "rd"), query=query, payload=links,
                           content_format=CF.LINK_FORMAT)


def update_request(location: tuple[str, ...], *, lifetime: int | None = None,
                   binding: str | None = None, queue_mode: bool = False,
                   links: bytes | None = None) -> Message:
    query: list[str] = []
    if lifetime is not None:
        query.append(f"lt={lifetime}")
    if binding is not None:
        query.append(f"b={binding}")
        if queue_mode:
            query.append("Q")
    if links is None:
        return Message.request(Code.POST, location, query=query)
    return Message.request(Code.POST, location, query=query, payload=links,
                           content_format=CF.LINK_FORMAT)


def deregister_request(location: tuple[str, ...]) -> Message:
    return Message.request(Code.DELETE, location)


def bootstrap_request(endpoint: str, preferred_format: int | None = None,
                      base: tuple[str, ...] = ()) -> Message:
    query = [f"ep={endpoint}"]
    if preferred_format is not None:
        query.append(f"pct={preferred_format}")
    return Message.request(Code.POST, (*base, "bs"), query=query)


def _diagnostic(response: Message) -> str:
    if response.payload and response.content_format in (None, 0):
        return response.payload.decode("utf-8", "replace")
    return ""


def check_response(operation: str, response: Message, expected: int) -> None:
    if response.code != expected:
        raise RegistrationRejected(operation, response.code, _diagnostic(response))


def location_of(response: Message) -> tuple[str, ...]:
    """The registration's location (``("rd", "id")``) from a 2.01 Register response."""
    check_response("Register", response, Code.CREATED)
    location = response.location_path
    if not location:
        raise RegistrationRejected("Register", response.code, "2.01 without Location-Path")
    return location


def update_due(updated_at: float, lifetime: int, max_transmit_wait: float) -> float:
    """When to send the next Update: early enough that it arrives before the lifetime ends
    even after every retransmission, and never later than 3/4 of the lifetime."""
    margin = min(lifetime / 4.0, max_transmit_wait)
    return updated_at + max(1.0, lifetime - margin)
