"""The client side of the Registration and Bootstrap-Request messages (sans-IO).

Builds ``POST /rd?ep=..&lt=..&lwm2m=1.1&b=U[&Q]`` (Register), ``POST /rd/{id}`` (Update),
``DELETE /rd/{id}`` (De-register) and ``POST /bs?ep=..[&pct=..]`` (Bootstrap-Request), reads
their responses, and says when the next Update is due.

The Register's root link, ``</>;rt="oma.lwm2m";ct=110``, names content formats. In LwM2M 1.1
``ct`` is optional (Core TS 6.2.1: a client that supports optional data formats MAY name
them) and names one format; servers built on Wakaama accept exactly one value there, from a
short list, and refuse the whole Register (4.00) otherwise. So a 1.1 Register names one
preferred format, by default SenML JSON (110): every 1.1 server (Wakaama's included) parses
it, 1.1 steers clients to SenML and away from the legacy TLV and LwM2M JSON (Core TS 7.4),
and this client reads and writes it at every level, composite operations included. TLV,
which Wakaama's server uses when ``ct`` is absent, is had by announcing no format at all
(Wakaama refuses an explicit ``ct=11542``). Only a 1.2 Register lists several
(``ct="60 110 ..."``, quoted, space-separated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiolwm2m.coap.codes import Code, code_str
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m.formats import ContentFormat, ObjectEntry, encode_object_list

CF = ContentFormat
#: What this client can encode and decode: a 1.2 Register lists them on the root link.
CLIENT_CONTENT_FORMATS = (CF.CBOR, CF.SENML_JSON, CF.SENML_CBOR, CF.TLV, CF.LWM2M_JSON,
                          CF.LWM2M_CBOR)
#: The one format a 1.1 Register names as preferred (see the module docstring).
PREFERRED_CONTENT_FORMAT = CF.SENML_JSON
#: The versions the client can register as; 1.2 changes only the root link's ``ct``.
CLIENT_LWM2M_VERSIONS = ("1.1", "1.2")


def announced_formats(lwm2m_version: str, formats: Sequence[int] | None = None
                      ) -> tuple[int, ...]:
    """The ``ct`` of a Register's root link: ``formats`` checked, or by default the
    preferred format (1.1) or every format the client handles (1.2). Raises ValueError
    for a format the client cannot handle, or for several under 1.1."""
    if formats is None:
        return (tuple(CLIENT_CONTENT_FORMATS) if lwm2m_version == "1.2"
                else (PREFERRED_CONTENT_FORMAT,))
    chosen = tuple(int(f) for f in formats)
    unknown = [f for f in chosen if f not in CLIENT_CONTENT_FORMATS]
    if unknown:
        raise ValueError(f"content format(s) {', '.join(map(str, unknown))} cannot be "
                         f"announced: the client handles "
                         f"{', '.join(str(int(f)) for f in CLIENT_CONTENT_FORMATS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError("a content format is announced twice")
    if len(chosen) > 1 and lwm2m_version != "1.2":
        raise ValueError(f"an LwM2M {lwm2m_version} Register names one preferred content "
                         f"format, not {len(chosen)} (a list needs LwM2M 1.2)")
    return chosen


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
                 content_formats: Iterable[int] = (PREFERRED_CONTENT_FORMAT,)) -> bytes:
    """The Register payload; ``content_formats`` from :func:`announced_formats`."""
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
