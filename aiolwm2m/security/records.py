"""Just enough DTLS 1.2 record parsing (RFC 6347 4.1) to triage datagrams before GnuTLS.

The server must decide, without allocating anything per peer, whether a datagram from an
unknown address is a ClientHello worth a cookie exchange; and it drops datagrams whose record
framing is broken before they reach (and possibly disturb) an established session.
"""

from __future__ import annotations

RECORD_HEADER = 13
HANDSHAKE_HEADER = 12
MAX_RECORD_PAYLOAD = 2**14 + 2048  # the largest DTLSCiphertext fragment allowed

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
_CONTENT_TYPES = frozenset((CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA))
CLIENT_HELLO = 1


def record_count(datagram: bytes) -> int:
    """How many DTLS records with sane headers make up the datagram; 0 if it is not that."""
    pos, end, count = 0, len(datagram), 0
    while pos < end:
        if end - pos < RECORD_HEADER:
            return 0
        if datagram[pos] not in _CONTENT_TYPES or datagram[pos + 1] != 0xFE:
            return 0
        length = int.from_bytes(datagram[pos + 11 : pos + 13], "big")
        if length > MAX_RECORD_PAYLOAD:
            return 0
        pos += RECORD_HEADER + length
        count += 1
    return count if pos == end else 0


def well_framed(datagram: bytes) -> bool:
    return record_count(datagram) > 0


def has_protected_handshake(datagram: bytes) -> bool:
    """Whether the datagram holds a handshake record of epoch 1 or later: in a handshake,
    the peer's Finished, the first record protected with the negotiated keys. Only called
    on datagrams that passed ``record_count``."""
    pos, end = 0, len(datagram)
    while pos + RECORD_HEADER <= end:
        if datagram[pos] == HANDSHAKE and (datagram[pos + 3] or datagram[pos + 4]):
            return True
        pos += RECORD_HEADER + int.from_bytes(datagram[pos + 11 : pos + 13], "big")
    return False


def is_initial_client_hello(datagram: bytes) -> bool:
    """An epoch-0 handshake record whose message is a ClientHello (handshake type 1)."""
    return (len(datagram) > RECORD_HEADER + HANDSHAKE_HEADER
            and datagram[0] == HANDSHAKE
            and datagram[3] == 0 and datagram[4] == 0
            and datagram[RECORD_HEADER] == CLIENT_HELLO)


def client_hello_random(datagram: bytes) -> bytes | None:
    """The 32-byte client random of an unfragmented-start ClientHello, else None."""
    start = RECORD_HEADER + HANDSHAKE_HEADER + 2
    if len(datagram) < start + 32 or datagram[RECORD_HEADER + 6 : RECORD_HEADER + 9] != b"\0\0\0":
        return None
    return datagram[start : start + 32]


CLIENT_CERTIFICATE_TYPE = 19  # RFC 7250 extensions
SERVER_CERTIFICATE_TYPE = 20
RAW_PUBLIC_KEY = 2


def _hello_extensions(body: bytes, datagram: bool) -> dict[int, bytes]:
    """Extensions of a ClientHello body (after the handshake header); {} when unparseable."""
    try:
        pos = 2 + 32  # client_version, random
        pos += 1 + body[pos]  # session_id
        if datagram:
            pos += 1 + body[pos]  # cookie
        pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + body[pos]  # compression_methods
        end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
        found: dict[int, bytes] = {}
        while pos + 4 <= min(end, len(body)):
            kind = int.from_bytes(body[pos : pos + 2], "big")
            length = int.from_bytes(body[pos + 2 : pos + 4], "big")
            found[kind] = body[pos + 4 : pos + 4 + length]
            pos += 4 + length
        return found
    except IndexError:
        return {}


def _lists_rawpk(ext: bytes | None) -> bool:
    return ext is not None and len(ext) >= 1 and RAW_PUBLIC_KEY in ext[1 : 1 + ext[0]]


def dtls_hello_accepts_server_rpk(datagram: bytes) -> bool:
    """Whether a DTLS ClientHello datagram lists raw public keys for the server's key."""
    body = datagram[RECORD_HEADER + HANDSHAKE_HEADER :]
    return _lists_rawpk(_hello_extensions(body, True).get(SERVER_CERTIFICATE_TYPE))


TLS_RECORD_HEADER = 5
TLS_HANDSHAKE_HEADER = 4


def tls_first_record(stream: bytes | bytearray) -> bytes | None:
    """The first complete TLS record of a stream (header included), or None if incomplete."""
    if len(stream) < TLS_RECORD_HEADER:
        return None
    end = TLS_RECORD_HEADER + int.from_bytes(stream[3:5], "big")
    return bytes(stream[:end]) if len(stream) >= end else None


def tls_hello_accepts_server_rpk(record: bytes) -> bool:
    """Whether a TLS record holding a ClientHello lists raw public keys for the server."""
    if len(record) < TLS_RECORD_HEADER + TLS_HANDSHAKE_HEADER or record[0] != HANDSHAKE \
            or record[TLS_RECORD_HEADER] != CLIENT_HELLO:
        return False
    body = record[TLS_RECORD_HEADER + TLS_HANDSHAKE_HEADER :]
    return _lists_rawpk(_hello_extensions(body, False).get(SERVER_CERTIFICATE_TYPE))
