"""The answer stream: a device's answers, framed as the downlink's requests are.

Instead of one ``POST /rd/{id}/responses/{identity}`` per answer (a HEADERS frame, HPACK
work and a ``204`` each), a device may keep one ``POST /rd/{id}/responses`` open with
``content-type: application/cbor-seq`` and write each answer as an item of that sequence:
tag 24 around a byte string holding a CBOR map, or a batch of them (an array)::

    {0: identity (text, the request's, HTT-004), 1: status (uint, the HTTP status that
     lwm2m-status would carry), 4: content format (uint), 6: observe (uint),
     7: payload (bytes)}

Keys 0 and 1 are required; the numbers are those of the downlink envelope where the meaning
is the same. The server answers the stream at once with ``200`` (``application/cbor-seq``);
its body carries an item for each answer it could not take, ``{0: identity, 1: status
(404: no request with this identity, 400/415: a bad answer), 2: text}``, and it ends with the
trailer ``lwm2m-closed: <reason>`` when the server closes the stream (a malformed item, too
many answers to nothing, the registration's end). A second answer stream does not replace
the first: both deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aiolwm2m.lwm2m.errors import InvalidPayload
from aiolwm2m.lwm2m.formats.cbor_support import dump, load_one

from .envelope import MAX_BATCH, EnvelopeError, frame_item
from .identity import valid_identity


@dataclass(slots=True)
class Answer:
    identity: str
    status: int
    content_format: int | None = None
    observe: int | None = None
    payload: bytes = b""

    def to_map(self) -> dict[int, object]:
        item: dict[int, object] = {0: self.identity, 1: self.status}
        if self.payload:
            if self.content_format is not None:
                item[4] = self.content_format
            item[7] = self.payload
        if self.observe is not None:
            item[6] = self.observe
        return item


@dataclass(slots=True)
class Rejection:
    """The server could not take an answer: which, why (an HTTP status and a few words)."""

    identity: str
    status: int
    text: str


#: Longest text of a rejection (they never quote the answer).
MAX_REJECTION_TEXT: Final = 120


def encode_answers(answers: list[Answer]) -> bytes:
    """One sequence item per answer (a reader can act on each as it arrives)."""
    return b"".join([frame_item(dump(a.to_map())) for a in answers])


def decode_answers(body: bytes) -> list[Answer]:
    """The answers in one item's byte string; raises :class:`EnvelopeError`."""
    try:
        item = load_one(60, body)
    except InvalidPayload as e:
        raise EnvelopeError(f"answer is not CBOR: {e}") from None
    if isinstance(item, dict):
        return [_answer(item)]
    if isinstance(item, list) and 1 <= len(item) <= MAX_BATCH:
        return [_answer(entry) for entry in item]
    raise EnvelopeError(f"an answer item is a map or an array of 1 to {MAX_BATCH} maps")


def _answer(item: Any) -> Answer:
    if not isinstance(item, dict):
        raise EnvelopeError("a batch of answers holds maps only")
    identity = item.get(0)
    if not isinstance(identity, str) or not valid_identity(identity):
        raise EnvelopeError("answer field 0 (identity) must be 1-64 base64url characters")
    status = item.get(1)
    if type(status) is not int or not 100 <= status <= 599:
        raise EnvelopeError("answer field 1 (status) must be an HTTP status 100-599")
    fmt = item.get(4)
    if fmt is not None and (type(fmt) is not int or not 0 <= fmt <= 0xFFFF):
        raise EnvelopeError("answer field 4 (content format) must be an integer 0-65535")
    observe = item.get(6)
    if observe is not None and (type(observe) is not int or not 0 <= observe <= 0xFFFFFF):
        raise EnvelopeError("answer field 6 (observe) must be an integer 0-16777215")
    payload = item.get(7, b"")
    if not isinstance(payload, bytes):
        raise EnvelopeError("answer field 7 (payload) must be a byte string")
    return Answer(identity, status, fmt, observe, payload)


def encode_rejection(rejection: Rejection) -> bytes:
    return frame_item(dump({0: rejection.identity, 1: rejection.status,
                            2: rejection.text[:MAX_REJECTION_TEXT]}))


def decode_rejection(body: bytes) -> Rejection:
    try:
        item = load_one(60, body)
    except InvalidPayload as e:
        raise EnvelopeError(f"rejection is not CBOR: {e}") from None
    if not isinstance(item, dict):
        raise EnvelopeError("a rejection is a map")
    identity, status, text = item.get(0), item.get(1), item.get(2, "")
    if (not isinstance(identity, str) or type(status) is not int
            or not isinstance(text, str)):
        raise EnvelopeError("a rejection is {0: identity, 1: status, 2: text}")
    return Rejection(identity, status, text[:MAX_REJECTION_TEXT])
