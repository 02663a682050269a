"""Parsing and checking Register / Update requests (LwM2M 1.1 registration interface).

Sans-IO: query items and payload in, typed parameters or a :class:`RegistrationError`
carrying the CoAP code to answer with (4.00 bad parameters, 4.12 unsupported version,
4.13 object list over its size or entry cap, 4.15 payload that is not link format) out.
Numbers are range-checked before conversion, and messages quote the peer's input only in
short excerpts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m.bounded_int import parse_decimal
from aiolwm2m.lwm2m.errors import LwM2MError, shown
from aiolwm2m.lwm2m.formats import ObjectList, ObjectListTooLarge, decode_object_list
from aiolwm2m.store.records import ObjectLinkEntry

MAX_ENDPOINT_LENGTH = 255
MAX_LIFETIME = 0xFFFFFFFF
#: Default cap of object and object-instance links in one Register/Update (see
#: ServerConfig.max_objects_per_registration), and of the object list's size in bytes.
MAX_OBJECTS = 10_000
MAX_PAYLOAD = 256 * 1024
# Object lists up to this size are parsed once per distinct payload (the cache's worst case
# is 4096 of them: 16 MiB of payloads plus their parsed entries).
_CACHED_PAYLOAD = 4096
# H: LwM2M over HTTP/2 (aiolwm2m.http2), the letter LwM2M 1.2 gives its HTTP binding.
_BINDING_LETTERS = frozenset("UTSNH")
# Objects a client must not list (Security, OSCORE): ignored rather than refused, since
# deployed 1.0 clients do list /0.
_UNLISTED_OBJECTS = frozenset({0, 21})


# The refusal reasons (``aiolwm2m.server.refusals``) of the codes this interface answers.
_REASONS: dict[int, str] = {
    Code.BAD_REQUEST: "bad-request", Code.FORBIDDEN: "forbidden",
    Code.NOT_FOUND: "unknown-registration", Code.PRECONDITION_FAILED: "unsupported-version",
    Code.REQUEST_ENTITY_TOO_LARGE: "too-large",
    Code.UNSUPPORTED_CONTENT_FORMAT: "unsupported-content-format"}


class RegistrationError(Exception):
    """A refused Register/Update/De-register: ``code`` and ``message`` go to the peer;
    ``reason`` (a refusal token) and ``detail`` only to the operator's log and events,
    since the detail may name identities."""

    def __init__(self, code: int, message: str, *, reason: str = "", detail: str = "",
                 endpoint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "refused")
        self.detail = detail or message
        self.endpoint = endpoint


@dataclass(frozen=True, slots=True)
class ObjectLinks:
    links: str
    objects: tuple[ObjectLinkEntry, ...]
    root_path: str
    content_formats: tuple[int, ...]


# Named tuples: one of these is made per request (frozen dataclasses are slow to build).


class RegisterParams(NamedTuple):
    endpoint: str
    lifetime: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    sms: str | None
    extra: tuple[tuple[str, str], ...]
    object_links: ObjectLinks


class UpdateParams(NamedTuple):
    lifetime: int | None
    binding: str | None
    queue_mode: bool | None
    sms: str | None
    object_links: ObjectLinks | None


def _query(items: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise RegistrationError(Code.BAD_REQUEST,
                                    f"empty query parameter in {shown(item, 24)}")
        if key in out:
            raise RegistrationError(Code.BAD_REQUEST, f"parameter {shown(key, 24)} given twice")
        out[key] = value if eq else None
    return out


def _lifetime(text: str | None) -> int:
    # Range-checked before int(): a 4,301-digit lt made int() raise a bare ValueError (5.00).
    value = parse_decimal(text or "", MAX_LIFETIME, 1)
    if value is None:
        raise RegistrationError(Code.BAD_REQUEST, f"lt={shown(text, 16)} is not an integer "
                                f"in 1..{MAX_LIFETIME}")
    return value


def _binding(text: str | None, version: str) -> tuple[str, bool]:
    """Binding letters and whether they ask for queue mode (1.0 spelled it ``UQ``)."""
    if not text:
        raise RegistrationError(Code.BAD_REQUEST, "b= needs binding letters")
    queue = False
    letters = text
    if version == "1.0" and "Q" in text:
        queue = True
        letters = text.replace("Q", "")
    if not letters or any(c not in _BINDING_LETTERS for c in letters) or len(
            set(letters)) != len(letters):
        raise RegistrationError(Code.BAD_REQUEST, f"b={shown(text, 16)} is not a binding mode")
    return letters, queue


def parse_object_links(payload: bytes, content_format: int | None, *,
                       max_objects: int = MAX_OBJECTS, max_payload: int = MAX_PAYLOAD
                       ) -> ObjectLinks:
    """The object list of a Register/Update: at most ``max_payload`` bytes and
    ``max_objects`` object and instance links (4.13 beyond either), parsed in linear time.
    Small lists are cached: a fleet sends a handful of distinct ones, and sharing the parsed
    tuples also shares their memory between registrations. Large ones are not, so that the
    cache cannot grow to hold megabytes of a peer's payloads."""
    if content_format not in (None, 40):
        raise RegistrationError(Code.UNSUPPORTED_CONTENT_FORMAT,
                                f"object list must be link format (40), not {content_format}")
    if len(payload) > max_payload:
        raise RegistrationError(Code.REQUEST_ENTITY_TOO_LARGE,
                                f"object list larger than {max_payload} bytes",
                                reason="object-list-too-large")
    if len(payload) <= _CACHED_PAYLOAD:
        return _cached_object_links(payload, max_objects)
    return _object_links(payload, max_objects)


@functools.lru_cache(maxsize=4096)
def _cached_object_links(payload: bytes, max_objects: int) -> ObjectLinks:
    return _object_links(payload, max_objects)


def _object_links(payload: bytes, max_objects: int) -> ObjectLinks:
    try:
        text = payload.decode("utf-8")
        parsed: ObjectList = decode_object_list(text, max_entries=max_objects)
    except UnicodeDecodeError:
        raise RegistrationError(Code.BAD_REQUEST, "object list is not UTF-8") from None
    except ObjectListTooLarge:
        raise RegistrationError(Code.REQUEST_ENTITY_TOO_LARGE,
                                f"object list holds more than {max_objects} objects and "
                                "instances", reason="object-list-too-large") from None
    except LwM2MError as e:
        raise RegistrationError(Code.BAD_REQUEST, f"bad object list: {e}") from None
    entries: list[ObjectLinkEntry] = []
    for obj in parsed.objects:
        if obj.object_id in _UNLISTED_OBJECTS:
            continue
        entries.append(ObjectLinkEntry(obj.object_id, None, obj.version))
        entries.extend(ObjectLinkEntry(obj.object_id, iid, None) for iid in obj.instances)
    return ObjectLinks(text, tuple(entries), parsed.root_path, parsed.content_formats)


def parse_register(query: Sequence[str], payload: bytes, content_format: int | None, *,
                   accepted_versions: frozenset[str], default_lifetime: int,
                   max_objects: int = MAX_OBJECTS, max_payload: int = MAX_PAYLOAD
                   ) -> RegisterParams:
    q = _query(query)
    endpoint = q.pop("ep", None)
    if not endpoint:
        raise RegistrationError(Code.BAD_REQUEST, "missing endpoint name (ep=)")
    if len(endpoint.encode("utf-8")) > MAX_ENDPOINT_LENGTH:
        raise RegistrationError(Code.BAD_REQUEST, "endpoint name longer than 255 bytes")
    version = q.pop("lwm2m", None) or "1.0"
    if version not in accepted_versions:
        raise RegistrationError(
            Code.PRECONDITION_FAILED,
            f"LwM2M version {version[:16]} not supported (accepted: "
            f"{', '.join(sorted(accepted_versions))})")
    lifetime = _lifetime(q.pop("lt")) if "lt" in q else default_lifetime
    binding, queue = _binding(q.pop("b"), version) if "b" in q else ("U", False)
    if "Q" in q:
        if q.pop("Q") is not None:
            raise RegistrationError(Code.BAD_REQUEST, "Q takes no value")
        queue = True
    sms = q.pop("sms", None)
    extra = tuple((k, v if v is not None else "") for k, v in q.items())
    links = parse_object_links(payload, content_format, max_objects=max_objects,
                               max_payload=max_payload)
    return RegisterParams(endpoint, lifetime, version, binding, queue, sms, extra, links)


def parse_update(query: Sequence[str], payload: bytes, content_format: int | None,
                 lwm2m_version: str, endpoint: str | None = None, *,
                 max_objects: int = MAX_OBJECTS, max_payload: int = MAX_PAYLOAD
                 ) -> UpdateParams:
    """``ep=`` is not an Update parameter; it is accepted when it repeats ``endpoint`` (the
    registration's name), which is how a NoSec client that moved behind a NAT proves it
    knows whose registration it updates (``ServerConfig.allow_address_change``)."""
    q = _query(query)
    if "ep" in q and endpoint is not None and q["ep"] == endpoint:
        del q["ep"]
    lifetime = _lifetime(q.pop("lt")) if "lt" in q else None
    binding: str | None = None
    queue: bool | None = None
    if "b" in q:
        binding, queue_from_b = _binding(q.pop("b"), lwm2m_version)
        if lwm2m_version == "1.0":
            queue = queue_from_b
    if "Q" in q:
        if q.pop("Q") is not None:
            raise RegistrationError(Code.BAD_REQUEST, "Q takes no value")
        queue = True
    sms = q.pop("sms", None)
    for key in ("ep", "lwm2m"):
        if key in q:
            raise RegistrationError(Code.BAD_REQUEST, f"{key} cannot change in an Update")
    links = parse_object_links(payload, content_format, max_objects=max_objects,
                               max_payload=max_payload) if payload else None
    return UpdateParams(lifetime, binding, queue, sms, links)
