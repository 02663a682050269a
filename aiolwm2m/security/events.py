"""Events the sans-IO DTLS/TLS endpoints hand to their transport adapter."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from .credentials import PeerIdentity
from .errors import SecurityError


@dataclass(slots=True)
class ApplicationData:
    """One decrypted record (DTLS: one CoAP datagram) or a chunk of the TLS byte stream.

    Not frozen, unlike the other events: it is made for every datagram, and a frozen
    dataclass costs twice as much to build.
    """

    peer: Hashable
    data: bytes


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    peer: Hashable
    identity: PeerIdentity
    resumed: bool = False
    alpn: str | None = None
    cipher_suite: str = ""


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session with ``peer`` is gone; ``error`` says why when it was not a clean close.

    ``established`` is False when the handshake never completed (failed, timed out, replaced).
    ``offered`` is who a peer whose handshake failed claimed to be (the PSK identity it
    offered, the key or certificate it presented), for the operator's report.
    """

    peer: Hashable
    reason: str
    error: SecurityError | None = None
    established: bool = True
    offered: PeerIdentity | None = None


Event = ApplicationData | HandshakeCompleted | SessionClosed
