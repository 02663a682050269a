"""TLS over a byte stream (CoAP over TLS, RFC 8323): sans-IO server and client connections.

A ``TlsServer`` holds the credentials shared by all accepted connections and makes one
``TlsServerConnection`` per TCP connection. Both connection kinds take the bytes TCP
delivered (``receive_data``), return events, and keep what must be written in
``outgoing()``. ALPN "coap" is offered by clients and required by servers by default.
TLS 1.3 and 1.2 are both enabled; PSK, RPK and X.509 work as with DTLS.
"""

from __future__ import annotations

from collections.abc import Hashable

from .config import ServerCredentials, TlsServerConfig
from .context import EndpointContext, Timing
from .credentials import Credentials, PeerIdentity
from .errors import SecurityError, SessionClosedError
from .events import ApplicationData, Event, HandshakeCompleted, SessionClosed
from .records import (
    MAX_RECORD_PAYLOAD,
    TLS_RECORD_HEADER,
    tls_first_record,
    tls_hello_accepts_server_rpk,
)
from .session import SessionState, TlsSession


class _TlsConnection:
    """Event plumbing shared by both ends of a TLS connection."""

    def __init__(self, session: TlsSession, peer: Hashable) -> None:
        self.peer = peer
        self._session = session
        self._out = bytearray()
        self._closed = False

    @property
    def established(self) -> bool:
        return self._session.state is SessionState.ESTABLISHED

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_identity(self) -> PeerIdentity | None:
        return self._session.peer_identity

    @property
    def alpn_protocol(self) -> str | None:
        return self._session.alpn_protocol if not self._closed else None

    @property
    def resumed(self) -> bool:
        return self._session.resumed

    @property
    def cipher_suite(self) -> str:
        return self._session.cipher_suite

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Bytes from the TCP stream; an empty ``data`` is not EOF (see ``receive_eof``)."""
        if self._closed:
            return []
        self._session.feed(data)
        return self._advance(now)

    def _advance(self, now: float) -> list[Event]:
        sess = self._session
        events: list[Event] = []
        if sess.state is SessionState.HANDSHAKING:
            try:
                done = sess.drive(now)
            except SecurityError as exc:
                return self._finish(exc.reason, exc, established=False)
            self._out += sess.outgoing()
            if not done:
                return events
            assert sess.identity is not None
            events.append(HandshakeCompleted(self.peer, sess.identity, sess.resumed,
                                             sess.alpn_protocol, sess.cipher_suite))
        chunks = sess.decrypt()
        self._out += sess.outgoing()
        events.extend(ApplicationData(self.peer, c) for c in chunks)
        if sess.state is SessionState.CLOSED:
            error = sess.close_error
            events.extend(self._finish(error.reason if error else "closed by the peer", error))
        return events

    def receive_eof(self) -> list[Event]:
        """The peer closed TCP; without a close_notify first that may be a truncation."""
        if self._closed:
            return []
        error = SessionClosedError("connection closed without close_notify")
        return self._finish(error.reason, error, established=self.established)

    def send(self, data: bytes) -> None:
        """Encrypt application bytes (then see ``outgoing``)."""
        if self._closed:
            raise SessionClosedError("the connection is closed")
        self._out += self._session.encrypt(data)

    def outgoing(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_deadline(self) -> float | None:
        """When a handshake in progress expires (no retransmission over TCP)."""
        if self._closed or self._session.state is not SessionState.HANDSHAKING:
            return None
        return self._session.deadline

    def handle_timeout(self, now: float) -> list[Event]:
        if self._closed or self._session.state is not SessionState.HANDSHAKING:
            return []
        deadline = self._session.deadline
        if deadline is None or now < deadline:
            return []
        return self._advance(now)

    def close(self) -> None:
        """Queue close_notify and free the session; write ``outgoing()`` then close TCP."""
        if not self._closed:
            self._out += self._session.close()
            self._closed = True
            self._session.free()

    def _finish(self, reason: str, error: SecurityError | None,
                established: bool = True) -> list[Event]:
        self._out += self._session.outgoing()
        self._closed = True
        self._session.free()
        return [SessionClosed(self.peer, reason, error, established)]


class TlsServerConnection(_TlsConnection):
    """One accepted TCP connection; made by ``TlsServer.accept``."""

    def __init__(self, ctx: EndpointContext, peer: Hashable, now: float) -> None:
        session = TlsSession(ctx)
        super().__init__(session, peer)
        self._ctx = ctx
        # A server with both RPK and X.509 reads the ClientHello before GnuTLS does, to
        # present its raw public key to clients that accept one (see priorities.py).
        self._hello: bytearray | None = bytearray() if ctx.chooses_certificate_type else None
        session.start(now)

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        if self._hello is None or self._closed:
            return super().receive_data(data, now)
        self._hello += data
        record = tls_first_record(self._hello)
        if record is None and len(self._hello) <= TLS_RECORD_HEADER + MAX_RECORD_PAYLOAD:
            return []
        if record is not None and tls_hello_accepts_server_rpk(record):
            self._session.prefer_server_rpk()
        pending, self._hello = bytes(self._hello), None
        return super().receive_data(pending, now)


class TlsServer:
    """Credentials and settings shared by every connection of one TLS listener."""

    def __init__(self, credentials: ServerCredentials,
                 config: TlsServerConfig | None = None) -> None:
        self.config = cfg = config or TlsServerConfig()
        self._ctx = EndpointContext.for_server(
            datagram=False, lookup=credentials.lookup, psk=credentials.psk,
            rpk=credentials.rpk, x509=credentials.x509, psk_hint=credentials.psk_hint,
            resumption=cfg.resumption, alpn=cfg.alpn, alpn_required=cfg.alpn_required,
            priority=cfg.priority, timing=Timing(handshake_timeout=cfg.handshake_timeout))

    def accept(self, peer: Hashable, now: float) -> TlsServerConnection:
        if self._ctx.closed:
            raise SessionClosedError("the TLS server was closed")
        return TlsServerConnection(self._ctx, peer, now)

    def close(self) -> None:
        """Free the shared credentials once every connection is closed."""
        self._ctx.close()


class TlsClientConnection(_TlsConnection):
    """A TLS client over one TCP connection; ``start`` queues the ClientHello."""

    def __init__(self, credentials: Credentials, *, alpn: tuple[str, ...] = ("coap",),
                 server_name: str | None = None, server_public_key: bytes | None = None,
                 session_data: bytes | None = None, resumption: bool = False,
                 handshake_timeout: float = 30.0, peer: Hashable = None,
                 priority: str | None = None) -> None:
        self._ctx = EndpointContext.for_client(
            credentials, datagram=False, timing=Timing(handshake_timeout=handshake_timeout),
            server_public_key=server_public_key, server_name=server_name, alpn=alpn,
            resumption=resumption or session_data is not None, priority=priority)
        session = TlsSession(self._ctx)
        if session_data:
            session.set_session_data(session_data)
        super().__init__(session, peer)

    def start(self, now: float) -> list[Event]:
        return self.receive_data(b"", now)

    @property
    def session_data(self) -> bytes | None:
        """Resumption data; under TLS 1.3 only after the server's ticket has been read."""
        return None if self._closed else self._session.session_data()

    def close(self) -> None:
        super().close()
        self._ctx.close()
