"""coaps+tcp: the security engine's sans-IO TLS connections, shaped for the TCP transport.

The TCP link needs four things of a TLS layer: decrypt what arrived (and learn when the
handshake completed or failed), encrypt what it sends (held back until the handshake is
done), the bytes to write, and an orderly close. :class:`TlsStream` provides them over
``aiolwm2m.security``'s ``TlsServerConnection`` / ``TlsClientConnection``; the two factories
below carry the credentials of a listener and of outgoing connections. ALPN "coap" is
offered by clients and required by servers (RFC 8323 section 4.1).
"""

from __future__ import annotations

from collections.abc import Hashable

from aiolwm2m.security import (
    ApplicationData,
    Credentials,
    Event,
    HandshakeCompleted,
    PeerIdentity,
    ServerCredentials,
    SessionClosed,
    TlsClientConnection,
    TlsServer,
    TlsServerConfig,
    TlsServerConnection,
)

ALPN_COAP = "coap"


class TlsStream:
    """One TLS connection as the TCP link sees it."""

    __slots__ = ("_engine", "_held", "established", "failure", "identity")

    def __init__(self, engine: TlsServerConnection | TlsClientConnection) -> None:
        self._engine = engine
        self._held: list[bytes] = []
        self.established = False
        self.identity: PeerIdentity | None = None
        self.failure: str | None = None

    @property
    def closed(self) -> bool:
        return self._engine.closed

    @property
    def alpn(self) -> str | None:
        return self._engine.alpn_protocol

    def receive(self, data: bytes, now: float) -> bytes:
        """Decrypted application bytes in ``data`` (often none during the handshake)."""
        return self._absorb(self._engine.receive_data(data, now))

    def _absorb(self, events: list[Event]) -> bytes:
        plain: list[bytes] = []
        for ev in events:
            if isinstance(ev, ApplicationData):
                plain.append(ev.data)
            elif isinstance(ev, HandshakeCompleted):
                self.established = True
                self.identity = ev.identity
                held, self._held = self._held, []
                for chunk in held:
                    self._engine.send(chunk)
            elif isinstance(ev, SessionClosed):
                self.failure = (ev.reason if ev.established
                                else f"TLS handshake failed: {ev.reason}")
        return b"".join(plain)

    def send(self, data: bytes) -> None:
        """Encrypt ``data``; before the handshake completes it waits in order."""
        if self.established:
            self._engine.send(data)
        elif not self._engine.closed:
            self._held.append(data)

    def outgoing(self) -> bytes:
        return self._engine.outgoing()

    def receive_eof(self) -> None:
        self._absorb(self._engine.receive_eof())

    def next_deadline(self) -> float | None:
        return self._engine.next_deadline()

    def handle_timeout(self, now: float) -> bytes:
        return self._absorb(self._engine.handle_timeout(now))

    def close(self) -> None:
        """Queue close_notify (see :meth:`outgoing`) and free the session."""
        self._engine.close()


class TlsServerSecurity:
    """What a coaps+tcp listener presents and accepts (see ``ServerCredentials``)."""

    def __init__(self, credentials: ServerCredentials,
                 config: TlsServerConfig | None = None) -> None:
        self._server = TlsServer(credentials, config or TlsServerConfig(alpn=(ALPN_COAP,)))

    def accept(self, peer: Hashable, now: float) -> TlsStream:
        return TlsStream(self._server.accept(peer, now))

    def close(self) -> None:
        self._server.close()


class TlsClientSecurity:
    """Credentials for outgoing coaps+tcp connections.

    ``server_name`` is sent as SNI and checked against the server certificate (X.509);
    ``server_public_key`` pins the server's raw public key (RPK).
    """

    def __init__(self, credentials: Credentials, *, server_name: str | None = None,
                 server_public_key: bytes | None = None, handshake_timeout: float = 30.0,
                 priority: str | None = None) -> None:
        self.credentials = credentials
        self.server_name = server_name
        self.server_public_key = server_public_key
        self.handshake_timeout = handshake_timeout
        self.priority = priority

    def connect(self, peer: Hashable, now: float) -> TlsStream:
        engine = TlsClientConnection(
            self.credentials, alpn=(ALPN_COAP,), server_name=self.server_name,
            server_public_key=self.server_public_key,
            handshake_timeout=self.handshake_timeout, peer=peer, priority=self.priority)
        stream = TlsStream(engine)
        stream._absorb(engine.start(now))
        return stream
