"""RFC 8323 section 3.2 framing of CoAP messages on a byte stream (TCP, TLS).

A frame is ``Len|TKL`` (one byte of two nibbles), an extended length of 0, 1, 2 or 4 bytes
when ``Len`` is 13, 14 or 15, then Code, Token, Options and ``0xFF`` Payload. ``Len`` counts
the options, the payload marker and the payload; it is always written in its shortest form
(CoT-006) and accepted in any valid form.

:class:`FrameParser` turns the bytes a stream delivers, in whatever pieces, into messages; a
frame announcing more than the receiver's Max-Message-Size is refused as soon as its length
is known, before any of its body is buffered.
"""

from __future__ import annotations

from .codec import decode_options, encode_options
from .errors import MessageFormatError
from .message import Message, RawOption

# Len nibble values that announce an extended length, and what each extension adds.
_EXT8, _EXT16, _EXT32 = 13, 14, 15
_OFFSET8, _OFFSET16, _OFFSET32 = 13, 269, 65805
MAX_BODY_LENGTH = 0xFFFFFFFF + _OFFSET32
MAX_TOKEN_LENGTH = 8
_HEADER_LENGTHS = (1,) * 13 + (2, 3, 5)


class FramingError(MessageFormatError):
    """The stream does not carry well-formed RFC 8323 frames: the connection cannot go on."""


class FrameTooLarge(FramingError):
    """A frame announced a size beyond the receiver's Max-Message-Size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the Max-Message-Size of {limit}")
        self.size = size
        self.limit = limit


def length_header(body_length: int, tkl: int) -> bytes:
    """The shortest ``Len|TKL`` byte plus extended length for a body of ``body_length``."""
    if body_length < _OFFSET8:
        return bytes(((body_length << 4) | tkl,))
    if body_length < _OFFSET16:
        return bytes(((_EXT8 << 4) | tkl, body_length - _OFFSET8))
    if body_length < _OFFSET32:
        v = body_length - _OFFSET16
        return bytes(((_EXT16 << 4) | tkl, v >> 8, v & 0xFF))
    if body_length <= MAX_BODY_LENGTH:
        return bytes(((_EXT32 << 4) | tkl,)) + (body_length - _OFFSET32).to_bytes(4, "big")
    raise ValueError(f"a body of {body_length} bytes cannot be framed")


def _in_order(options: list[RawOption]) -> list[RawOption]:
    prev = -1
    for n, _ in options:
        if n < prev:
            return sorted(options, key=lambda o: o[0])
        prev = n
    return options


def encode_tcp(msg: Message) -> bytes:
    """The frame for ``msg``; its type and message ID do not exist on streams."""
    token = msg.token
    tkl = len(token)
    if tkl > MAX_TOKEN_LENGTH:
        raise ValueError("token longer than 8 bytes")
    body = bytearray()
    if msg.options:
        encode_options(_in_order(msg.options), body)
    payload = msg.payload
    if payload:
        body.append(0xFF)
        body += payload
    return b"".join((length_header(len(body), tkl), bytes((msg.code,)), token, body))


def _value_header_size(value: int) -> int:
    return 0 if value < 13 else 1 if value < 269 else 2


def options_size(options: list[RawOption]) -> int:
    """How many bytes ``options`` (sorted) take on the wire, without encoding them."""
    size = 0
    last = 0
    for number, value in options:
        n = len(value)
        size += 1 + _value_header_size(number - last) + _value_header_size(n) + n
        last = number
    return size


def frame_size(msg: Message) -> int:
    """The encoded size of ``msg`` (what a peer's Max-Message-Size is compared with)."""
    body = options_size(_in_order(msg.options)) if msg.options else 0
    if msg.payload:
        body += 1 + len(msg.payload)
    return _HEADER_LENGTHS[_nibble(body)] + 1 + len(msg.token) + body


def _nibble(body_length: int) -> int:
    if body_length < _OFFSET8:
        return body_length
    if body_length < _OFFSET16:
        return _EXT8
    return _EXT16 if body_length < _OFFSET32 else _EXT32


class FrameParser:
    """Incremental decoder for one direction of one connection.

    ``max_message_size`` bounds Code + Token + Options + Payload of every frame (the length
    header itself is not counted, so a peer that counts it is never refused for it).
    """

    __slots__ = ("_buf", "_need", "max_message_size")

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        # A partial frame waiting for more bytes, and how many bytes it needs in total
        # (once the header is complete; before that, the size of the header).
        self._buf = bytearray()
        self._need = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Every message completed by ``data``; raises :class:`FramingError` (and only that)
        when the stream is not well formed. The parser is unusable after an error."""
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []
            data = bytes(buf)
            buf.clear()
        messages: list[Message] = []
        n = len(data)
        pos = 0
        limit = self.max_message_size
        while pos < n:
            b0 = data[pos]
            nibble = b0 >> 4
            tkl = b0 & 0x0F
            if tkl > MAX_TOKEN_LENGTH:
                raise FramingError(f"reserved token length {tkl}")
            hl = _HEADER_LENGTHS[nibble]
            if pos + hl > n:
                buf += data[pos:]
                self._need = hl
                break
            if nibble < _EXT8:
                length = nibble
            elif nibble == _EXT8:
                length = data[pos + 1] + _OFFSET8
            elif nibble == _EXT16:
                length = ((data[pos + 1] << 8) | data[pos + 2]) + _OFFSET16
            else:
                length = int.from_bytes(data[pos + 1:pos + 5], "big") + _OFFSET32
            size = 1 + tkl + length
            if size > limit:
                raise FrameTooLarge(size, limit)
            end = pos + hl + size
            if end > n:
                buf += data[pos:]
                self._need = end - pos
                break
            start = pos + hl + 1
            token = data[start:start + tkl]
            if length:
                try:
                    options, payload = decode_options(data, start + tkl, end)
                except MessageFormatError as e:
                    raise FramingError(e.reason) from None
                messages.append(Message(0, data[pos + hl], 0, token, options, payload))
            else:
                messages.append(Message(0, data[pos + hl], 0, token, [], b""))
            pos = end
        return messages


def decode_tcp(frame: bytes, max_message_size: int = MAX_BODY_LENGTH) -> Message:
    """Exactly one complete frame to its message."""
    parser = FrameParser(max_message_size)
    messages = parser.feed(frame)
    if len(messages) != 1 or parser.buffered:
        raise FramingError(f"expected one complete frame, got {len(messages)} and "
                           f"{parser.buffered} bytes over")
    return messages[0]
