"""Exceptions of the CoAP layer.

The codec raises :class:`MessageFormatError` for bytes that are not a CoAP message; request
handlers raise :class:`CoapRequestError` (or a subclass) to answer with an error code and a
diagnostic payload, which the transport maps to a response once, at the edge.
"""

from __future__ import annotations

from .codes import Code, code_str


class CoapError(Exception):
    """Base of every error raised by :mod:`aiolwm2m.coap`."""


class MessageFormatError(CoapError):
    """The datagram or frame is not a well-formed CoAP message.

    ``mid`` and ``mtype`` are set when the fixed header could be read, so that the receiver can
    reject a Confirmable message with a matching Reset (RFC 7252 section 4.2).
    """

    def __init__(self, reason: str, mid: int | None = None, mtype: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mid = mid
        self.mtype = mtype


class CoapRequestError(CoapError):
    """Answer the current request with ``code`` and ``diagnostic`` as a text/plain payload."""

    code: int = Code.INTERNAL_SERVER_ERROR

    def __init__(self, diagnostic: str = "", code: int | None = None) -> None:
        super().__init__(diagnostic or code_str(code if code is not None else self.code))
        if code is not None:
            self.code = code
        self.diagnostic = diagnostic


class BadRequest(CoapRequestError):
    code = Code.BAD_REQUEST


class BadOption(CoapRequestError):
    code = Code.BAD_OPTION


class Forbidden(CoapRequestError):
    code = Code.FORBIDDEN


class NotFound(CoapRequestError):
    code = Code.NOT_FOUND


class MethodNotAllowed(CoapRequestError):
    code = Code.METHOD_NOT_ALLOWED


class NotAcceptable(CoapRequestError):
    code = Code.NOT_ACCEPTABLE


class RequestEntityIncomplete(CoapRequestError):
    code = Code.REQUEST_ENTITY_INCOMPLETE


class PreconditionFailed(CoapRequestError):
    code = Code.PRECONDITION_FAILED


class RequestEntityTooLarge(CoapRequestError):
    code = Code.REQUEST_ENTITY_TOO_LARGE


class UnsupportedContentFormat(CoapRequestError):
    code = Code.UNSUPPORTED_CONTENT_FORMAT


class ServiceUnavailable(CoapRequestError):
    code = Code.SERVICE_UNAVAILABLE


class RequestTimeout(CoapError):
    """No response arrived within the exchange's lifetime (or the peer never acknowledged)."""


class RequestRejected(CoapError):
    """The peer answered a Confirmable request with a Reset."""


class EndpointClosed(CoapError):
    """The endpoint was shut down while the request was outstanding."""
