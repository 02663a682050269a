"""``DtlsClient``: a sans-IO DTLS 1.2 client session with one server.

The transport calls ``start(now)``, sends ``outgoing()``, feeds every datagram from the
server to ``receive_datagram`` and calls ``handle_timeout(now)`` at ``next_deadline()``
(handshake retransmission and expiry). ``session_data`` after a completed handshake can be
passed to a later client (``session_data=``) to resume with an abbreviated handshake.
"""

from __future__ import annotations

from collections.abc import Hashable

from .context import EndpointContext, Timing
from .credentials import Credentials, PeerIdentity
from .errors import NotEstablished, SecurityError, SessionClosedError
from .events import ApplicationData, Event, HandshakeCompleted, SessionClosed
from .gnutls_ffi import lib
from .records import record_count
from .session import DtlsSession, SessionState


class DtlsClient:
    def __init__(self, credentials: Credentials, *, server_public_key: bytes | None = None,
                 server_name: str | None = None, peer: Hashable = None,
                 session_data: bytes | None = None, resumption: bool = False,
                 handshake_timeout: float = 30.0, retransmit_ms: int = 1000, mtu: int = 1232,
                 priority: str | None = None) -> None:
        """``server_public_key``: the server's raw public key (SPKI DER/PEM), RPK mode only.
        ``server_name``: SNI and the name the server certificate must match (X.509 usages
        0-2). ``peer`` is only echoed in the events. ``resumption`` asks the server for a
        session ticket; ``session_data`` offers one from an earlier session.
        """
        self.peer = peer
        self._ctx = EndpointContext.for_client(
            credentials, datagram=True, timing=Timing(handshake_timeout, retransmit_ms, mtu),
            server_public_key=server_public_key, server_name=server_name,
            resumption=resumption or session_data is not None, priority=priority)
        self._session_data = session_data
        self._session: DtlsSession | None = None
        self._out: list[bytes] = []

    # -- state ---------------------------------------------------------------------------

    @property
    def established(self) -> bool:
        return self._session is not None and self._session.state is SessionState.ESTABLISHED

    @property
    def peer_identity(self) -> PeerIdentity | None:
        return self._session.peer_identity if self._session is not None else None

    @property
    def resumed(self) -> bool:
        return self._session is not None and self._session.resumed

    @property
    def cipher_suite(self) -> str:
        return self._session.cipher_suite if self._session is not None else ""

    @property
    def session_data(self) -> bytes | None:
        """A ticket for resuming later (``resumption=True``), once established."""
        return self._session.session_data() if self._session is not None else None

    @property
    def max_payload(self) -> int:
        if not self.established or self._session is None:
            raise NotEstablished("no established session")
        return int(lib().gnutls_dtls_get_data_mtu(self._session._gnutls_session))

    # -- driving -------------------------------------------------------------------------

    def start(self, now: float) -> list[Event]:
        """Begin (or begin again) a handshake: the ClientHello is then in ``outgoing()``."""
        if self._ctx.closed:
            raise SessionClosedError("the client was closed")
        if self._session is not None:
            self._session.free()
        self._session = DtlsSession(self._ctx)
        if self._session_data:
            self._session.set_session_data(self._session_data)
        return self._drive(self._session, now)

    def receive_datagram(self, data: bytes, now: float) -> list[Event]:
        sess = self._session
        records = record_count(data)
        if sess is None or sess.state is SessionState.CLOSED or not records:
            return []
        sess.feed(data, records)
        if sess.state is SessionState.HANDSHAKING:
            return self._drive(sess, now)
        return self._read(sess)

    def _drive(self, sess: DtlsSession, now: float) -> list[Event]:
        events: list[Event] = []
        try:
            done = sess.drive(now)
        except SecurityError as exc:
            self._out.extend(sess.outgoing())
            sess.free()
            return [SessionClosed(self.peer, exc.reason, exc, established=False)]
        self._out.extend(sess.outgoing())
        if done:
            assert sess.identity is not None
            events.append(HandshakeCompleted(self.peer, sess.identity, sess.resumed, None,
                                             sess.cipher_suite))
            events.extend(self._read(sess))
        return events

    def _read(self, sess: DtlsSession) -> list[Event]:
        events: list[Event] = [ApplicationData(self.peer, d) for d in sess.decrypt()]
        self._out.extend(sess.outgoing())
        if sess.state is SessionState.CLOSED:
            error = sess.close_error
            sess.free()
            events.append(SessionClosed(self.peer, error.reason if error else "closed by the peer",
                                        error))
        return events

    def send(self, app_data: bytes) -> None:
        """Encrypt one application datagram (then see ``outgoing``)."""
        if self._ctx.closed:
            raise SessionClosedError("the client was closed")
        if self._session is None:
            raise NotEstablished("start() the client first")
        if self._session.state is SessionState.CLOSED:
            raise SessionClosedError("the session is closed")
        self._out.extend(self._session.encrypt(app_data))

    def outgoing(self) -> list[bytes]:
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        sess = self._session
        if sess is None or sess.state is not SessionState.HANDSHAKING:
            return None
        return sess.deadline

    def handle_timeout(self, now: float) -> list[Event]:
        sess = self._session
        if sess is None or sess.state is not SessionState.HANDSHAKING:
            return []
        if sess.deadline is not None and now < sess.deadline:
            return []
        return self._drive(sess, now)

    def close(self) -> None:
        """Send close_notify (if established) and free all native state."""
        if self._session is not None:
            self._out.extend(self._session.close())
            self._session.free()
            self._session = None
        self._ctx.close()
