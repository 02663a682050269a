"""The one exception of the Resource Directory, mapped to a CoAP code at the edge."""

from __future__ import annotations

from aiolwm2m.coap.codes import Code

# Refusal reasons (``aiolwm2m.server.refusals``) of the codes the RD answers with.
_REASONS: dict[int, str] = {
    Code.BAD_REQUEST: "rd-bad-request", Code.FORBIDDEN: "rd-forbidden",
    Code.NOT_FOUND: "rd-unknown-registration", Code.PRECONDITION_FAILED: "rd-precondition",
    Code.REQUEST_ENTITY_TOO_LARGE: "rd-too-large",
    Code.UNSUPPORTED_CONTENT_FORMAT: "rd-unsupported-content-format",
    Code.SERVICE_UNAVAILABLE: "rd-unavailable"}


class RdError(Exception):
    """A refused RD request. ``code`` and ``message`` go to the peer (short, never echoing
    its input at length, never naming identities); ``reason`` (a stable token, the metrics
    label) and ``detail`` go to the operator's log and events only."""

    def __init__(self, code: int, message: str, *, reason: str = "", detail: str = "",
                 endpoint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "rd-refused")
        self.detail = detail or message
        self.endpoint = endpoint


def bad_request(message: str) -> RdError:
    return RdError(Code.BAD_REQUEST, message)
