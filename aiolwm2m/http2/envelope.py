"""The downlink envelope (HTT-003): requests from the server, framed on a device's stream.

The body of ``GET /rd/{id}/requests`` (``application/cbor-seq``) is a CBOR sequence
(RFC 8742). Each item is an *encoded CBOR data item* (tag 24 around a byte string), so that a
reader learns an item's length from its first bytes and never re-parses a partial one; the
byte string holds either one request, a CBOR map, or a batch of them, an array (HTT-002)::

    {0: identity (text, HTT-004), 1: method (uint, CoAP code: 1 GET, 2 POST, 3 PUT,
     4 DELETE, 5 FETCH, 6 PATCH, 7 iPATCH), 2: path (text, "/3/0/1"),
     3: query ([text], e.g. ["pmin=10"]), 4: content format (uint), 5: accept (uint),
     6: observe (uint: 0 registers, 1 cancels), 7: payload (bytes)}

Keys 0, 1 and 2 are required, the others optional; unknown keys are ignored, so that later
versions may add fields. Payloads are the CoAP payloads unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from aiolwm2m.lwm2m.errors import InvalidPayload
from aiolwm2m.lwm2m.formats.cbor_support import dump, load_one

from .identity import valid_identity

MEDIA_TYPE: Final = "application/cbor-seq"
_TAG_24: Final = b"\xd8\x18"
#: Requests in one batch, query items in one request, characters of one path.
MAX_BATCH: Final = 64
MAX_QUERY_ITEMS: Final = 16
MAX_PATH: Final = 256
_METHODS: Final = range(1, 8)
_FIELDS: Final = frozenset(range(8))


class EnvelopeError(ValueError):
    """A malformed envelope; the message says what was wrong (never echoing the input)."""


@dataclass(slots=True)
class DownlinkRequest:
    identity: str
    method: int
    path: str
    query: tuple[str, ...] = ()
    content_format: int | None = None
    accept: int | None = None
    observe: int | None = None
    payload: bytes = b""
    #: Unknown keys of a received request (kept so tests can see them ignored).
    extra: dict[int, Any] = field(default_factory=dict)

    def to_map(self) -> dict[int, object]:
        item: dict[int, object] = {0: self.identity, 1: self.method, 2: self.path}
        if self.query:
            item[3] = list(self.query)
        if self.content_format is not None:
            item[4] = self.content_format
        if self.accept is not None:
            item[5] = self.accept
        if self.observe is not None:
            item[6] = self.observe
        if self.payload:
            item[7] = self.payload
        return item


def encode_envelope(requests: list[DownlinkRequest]) -> bytes:
    """One sequence item: a single request, or a batch when there are several."""
    if not requests:
        raise ValueError("an envelope holds at least one request")
    return frame_item(dump(requests[0].to_map() if len(requests) == 1
                           else [r.to_map() for r in requests]))


def _bytes_head(length: int) -> bytes:
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")


class SequenceSplitter:
    """Cuts a sequence of tag-24 items into the items' byte strings (not decoded), holding
    at most the one incomplete item; ``max_item`` bounds its size. Raises
    :class:`EnvelopeError` on anything but tag-24 byte strings: the stream is unusable
    after that."""

    __slots__ = ("_buffer", "max_item")

    def __init__(self, max_item: int = 1 << 20) -> None:
        self.max_item = max_item
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an item not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer
        buf += data
        out: list[bytes] = []
        while buf:
            if len(buf) < 3:
                if bytes(buf[:2]) != _TAG_24[:len(buf[:2])]:
                    raise EnvelopeError("envelope item is not tag 24 (encoded CBOR)")
                break
            if buf[0] != 0xD8 or buf[1] != 0x18:
                raise EnvelopeError("envelope item is not tag 24 (encoded CBOR)")
            head = buf[2]
            if head >> 5 != 2:
                raise EnvelopeError("tag 24 must enclose a byte string")
            info = head & 0x1F
            if info < 24:
                start, length = 3, info
            elif 24 <= info <= 27:
                width = 1 << (info - 24)
                if len(buf) < 3 + width:
                    break
                start, length = 3 + width, int.from_bytes(buf[3:3 + width], "big")
            else:
                raise EnvelopeError("envelope item of indefinite length")
            if length > self.max_item:
                raise EnvelopeError(f"envelope item over {self.max_item} bytes")
            end = start + length
            if len(buf) < end:
                break
            out.append(bytes(buf[start:end]))
            del buf[:end]
        return out


class EnvelopeReader:
    """Splits a downlink stream into requests; ``max_item`` bounds one item's size, and so
    what the reader ever buffers."""

    __slots__ = ("_items",)

    def __init__(self, max_item: int = 1 << 20) -> None:
        self._items = SequenceSplitter(max_item)

    @property
    def max_item(self) -> int:
        return self._items.max_item

    @property
    def pending(self) -> int:
        """Bytes of an item not yet complete."""
        return self._items.pending

    def feed(self, data: bytes) -> list[list[DownlinkRequest]]:
        """The envelopes ``data`` completed, each a list of its requests (one unless it
        is a batch). Raises :class:`EnvelopeError`: the stream is unusable after that."""
        return [decode_item(body) for body in self._items.feed(data)]


def frame_item(body: bytes) -> bytes:
    """``body`` (encoded CBOR) as one item of a sequence: tag 24 around a byte string."""
    return _TAG_24 + _bytes_head(len(body)) + body


def decode_item(body: bytes) -> list[DownlinkRequest]:
    """The requests in one envelope item's byte string."""
    try:
        item = load_one(60, body)
    except InvalidPayload as e:
        raise EnvelopeError(f"envelope is not CBOR: {e}") from None
    if isinstance(item, dict):
        return [_request(item)]
    if isinstance(item, list):
        if not 1 <= len(item) <= MAX_BATCH:
            raise EnvelopeError(f"a batch holds 1 to {MAX_BATCH} requests")
        requests = []
        for entry in item:
            if not isinstance(entry, dict):
                raise EnvelopeError("a batch holds maps only")
            requests.append(_request(entry))
        return requests
    raise EnvelopeError("envelope is neither a request (map) nor a batch (array)")


def _request(item: dict[Any, Any]) -> DownlinkRequest:
    identity = item.get(0)
    if type(identity) is not str or not valid_identity(identity):
        raise EnvelopeError("field 0 (identity) must be 1-64 base64url characters")
    method = item.get(1)
    if type(method) is not int or method not in _METHODS:
        raise EnvelopeError("field 1 (method) must be a CoAP method code 1-7")
    path = item.get(2)
    if type(path) is not str or path[:1] != "/" or len(path) > MAX_PATH:
        raise EnvelopeError(f"field 2 (path) must be text starting with / (at most "
                            f"{MAX_PATH} characters)")
    query = item.get(3)
    if query is None:
        query = ()
    elif (type(query) is not list or len(query) > MAX_QUERY_ITEMS
            or not all(type(q) is str and len(q) <= 255 for q in query)):
        raise EnvelopeError(f"field 3 (query) must be a list of at most {MAX_QUERY_ITEMS} "
                            "texts")
    payload = item.get(7, b"")
    if type(payload) is not bytes:
        raise EnvelopeError("field 7 (payload) must be a byte string")
    request = DownlinkRequest(identity, method, path, tuple(query),
                              _uint(item, 4, 0xFFFF, "content format"),
                              _uint(item, 5, 0xFFFF, "accept"),
                              _uint(item, 6, 0xFFFFFF, "observe"), payload)
    if not _FIELDS.issuperset(item):
        request.extra = {k: v for k, v in item.items() if k not in _FIELDS}
    return request


def _uint(item: dict[Any, Any], key: int, limit: int, name: str) -> int | None:
    value = item.get(key)
    if value is None or (type(value) is int and 0 <= value <= limit):
        return value
    raise EnvelopeError(f"field {key} ({name}) must be an integer 0-{limit}")
