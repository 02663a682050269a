"""Wire codec for RFC 7252 messages over datagrams, and the option encoding shared with the
RFC 8323 stream framing.

Decoding is strict: anything that is not a well-formed message raises
:class:`MessageFormatError` and nothing else, whatever the input bytes.
"""

from __future__ import annotations

from .errors import MessageFormatError
from .message import Message, RawOption

_HEADER_BYTES = tuple(bytes((b,)) for b in range(256))


def _ext(value: int) -> tuple[int, bytes]:
    """The 4-bit nibble and extension bytes for an option delta or length."""
    if value < 13:
        return value, b""
    if value < 269:
        return 13, _HEADER_BYTES[value - 13]
    if value < 65805:
        v = value - 269
        return 14, bytes((v >> 8, v & 0xFF))
    raise ValueError(f"option delta/length {value} too large")


def encode_options(options: list[RawOption], out: bytearray) -> None:
    """Append ``options`` (which must be sorted by number) to ``out``."""
    last = 0
    for number, value in options:
        delta = number - last
        length = len(value)
        last = number
        if delta < 13 and length < 13:
            out.append((delta << 4) | length)
        else:
            dn, dx = _ext(delta)
            ln, lx = _ext(length)
            out.append((dn << 4) | ln)
            out += dx
            out += lx
        out += value


def _sorted_options(msg: Message) -> list[RawOption]:
    opts = msg.options
    if len(opts) > 1:
        prev = -1
        for n, _ in opts:
            if n < prev:
                opts.sort(key=_option_number)
                break
            prev = n
    return opts


def _option_number(o: RawOption) -> int:
    return o[0]


def encode_udp(msg: Message) -> bytes:
    token = msg.token
    tkl = len(token)
    if tkl > 8:
        raise ValueError("token longer than 8 bytes")
    mid = msg.mid
    out = bytearray((0x40 | (msg.mtype << 4) | tkl, msg.code, (mid >> 8) & 0xFF, mid & 0xFF))
    out += token
    if msg.options:
        encode_options(_sorted_options(msg), out)
    if msg.payload:
        out.append(0xFF)
        out += msg.payload
    return bytes(out)


def decode_options(data: bytes, pos: int, end: int) -> tuple[list[RawOption], bytes]:
    """Options and payload from ``data[pos:end]``; raises ``MessageFormatError`` (no ids)."""
    options: list[RawOption] = []
    number = 0
    try:
        while pos < end:
            b = data[pos]
            pos += 1
            if b == 0xFF:
                if pos == end:
                    raise MessageFormatError("payload marker followed by no payload")
                return options, data[pos:end]
            delta = b >> 4
            length = b & 0x0F
            if delta >= 13:
                if delta == 13:
                    delta = data[pos] + 13
                    pos += 1
                elif delta == 14:
                    delta = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise MessageFormatError("option delta nibble 15 without payload marker")
                if number + delta > 0xFFFF:
                    raise MessageFormatError(f"option number {number + delta} exceeds 65535")
            if length >= 13:
                if length == 13:
                    length = data[pos] + 13
                    pos += 1
                elif length == 14:
                    length = ((data[pos] << 8) | data[pos + 1]) + 269
                    pos += 2
                else:
                    raise MessageFormatError("option length nibble 15")
            number += delta
            nxt = pos + length
            if nxt > end:
                raise MessageFormatError(
                    f"option {number} length {length} runs past the end of the message")
            options.append((number, data[pos:nxt]))
            pos = nxt
    except IndexError:
        raise MessageFormatError("option header truncated") from None
    return options, b""


def decode_udp(data: bytes) -> Message:
    n = len(data)
    if n < 4:
        raise MessageFormatError(f"datagram of {n} bytes is shorter than the CoAP header")
    b0 = data[0]
    mtype = (b0 >> 4) & 3
    mid = (data[2] << 8) | data[3]
    if b0 >> 6 != 1:
        # Unknown versions are silently ignored (RFC 7252 section 3): no mid, so no Reset.
        raise MessageFormatError(f"unsupported CoAP version {b0 >> 6}")
    tkl = b0 & 0x0F
    code = data[1]
    if tkl > 8:
        raise MessageFormatError(f"reserved token length {tkl}", mid, mtype)
    pos = 4 + tkl
    if pos > n:
        raise MessageFormatError("token runs past the end of the datagram", mid, mtype)
    if code == 0:
        if n != 4 or tkl:
            raise MessageFormatError("empty message with token, options or payload", mid, mtype)
        return Message(mtype, 0, mid, b"", [], b"")
    klass = code >> 5
    if klass == 1 or klass >= 6:
        raise MessageFormatError(f"code class {klass} is reserved on datagram transports",
                                 mid, mtype)
    token = data[4:pos]
    if pos == n:
        return Message(mtype, code, mid, token, [], b"")
    try:
        options, payload = decode_options(data, pos, n)
    except MessageFormatError as e:
        e.mid, e.mtype = mid, mtype
        raise
    return Message(mtype, code, mid, token, options, payload)
