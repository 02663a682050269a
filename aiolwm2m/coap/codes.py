"""CoAP message types and codes (RFC 7252 section 12.1, RFC 8132, RFC 8323 signals)."""

from __future__ import annotations

from enum import IntEnum


class MessageType(IntEnum):
    CON = 0
    NON = 1
    ACK = 2
    RST = 3


def code(klass: int, detail: int) -> int:
    """The 8-bit code c.dd as it travels on the wire."""
    return (klass << 5) | detail


class Code(IntEnum):
    EMPTY = 0
    # methods
    GET = 1
    POST = 2
    PUT = 3
    DELETE = 4
    FETCH = 5
    PATCH = 6
    IPATCH = 7
    # 2.xx success
    CREATED = code(2, 1)
    DELETED = code(2, 2)
    VALID = code(2, 3)
    CHANGED = code(2, 4)
    CONTENT = code(2, 5)
    CONTINUE = code(2, 31)
    # 4.xx client error
    BAD_REQUEST = code(4, 0)
    UNAUTHORIZED = code(4, 1)
    BAD_OPTION = code(4, 2)
    FORBIDDEN = code(4, 3)
    NOT_FOUND = code(4, 4)
    METHOD_NOT_ALLOWED = code(4, 5)
    NOT_ACCEPTABLE = code(4, 6)
    REQUEST_ENTITY_INCOMPLETE = code(4, 8)
    CONFLICT = code(4, 9)
    PRECONDITION_FAILED = code(4, 12)
    REQUEST_ENTITY_TOO_LARGE = code(4, 13)
    UNSUPPORTED_CONTENT_FORMAT = code(4, 15)
    UNPROCESSABLE_ENTITY = code(4, 22)
    TOO_MANY_REQUESTS = code(4, 29)
    # 5.xx server error
    INTERNAL_SERVER_ERROR = code(5, 0)
    NOT_IMPLEMENTED = code(5, 1)
    BAD_GATEWAY = code(5, 2)
    SERVICE_UNAVAILABLE = code(5, 3)
    GATEWAY_TIMEOUT = code(5, 4)
    PROXYING_NOT_SUPPORTED = code(5, 5)
    # 7.xx signalling (RFC 8323, reliable transports only)
    CSM = code(7, 1)
    PING = code(7, 2)
    PONG = code(7, 3)
    RELEASE = code(7, 4)
    ABORT = code(7, 5)


METHODS = frozenset({Code.GET, Code.POST, Code.PUT, Code.DELETE, Code.FETCH, Code.PATCH,
                     Code.IPATCH})


def is_request(c: int) -> bool:
    return 1 <= c <= 31


def is_response(c: int) -> bool:
    return 64 <= c <= 191


def is_signal(c: int) -> bool:
    return 224 <= c <= 255


def is_success(c: int) -> bool:
    return 64 <= c < 96


def code_class(c: int) -> int:
    return c >> 5


def code_str(c: int) -> str:
    """Dotted form, e.g. ``2.05``; methods are printed by name."""
    if is_request(c):
        try:
            return Code(c).name
        except ValueError:
            return f"0.{c & 31:02d}"
    return f"{c >> 5}.{c & 31:02d}"


def parse_code(text: str) -> int:
    """Accepts ``2.05``, ``205``, or a name such as ``CONTENT`` / ``GET``."""
    t = text.strip()
    if "." in t:
        klass, _, detail = t.partition(".")
        return code(int(klass), int(detail))
    if t.isdigit() and len(t) == 3:
        return code(int(t[0]), int(t[1:]))
    return int(Code[t.upper().replace("-", "_").replace(" ", "_")])
