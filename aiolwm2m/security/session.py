"""One GnuTLS session fed from memory: ``DtlsSession`` (datagrams) and ``TlsSession`` (stream).

Sans-IO: ``feed`` queues what the socket delivered, ``drive(now)`` advances the handshake,
``decrypt`` yields application data, ``encrypt`` and ``outgoing`` hand back what to send,
and ``deadline`` says when to call ``drive`` again (DTLS retransmission, handshake expiry).
GnuTLS keeps its retransmission timer on the system monotonic clock; ``now`` only decides
when we look again, and when our own handshake deadline has passed.
"""

from __future__ import annotations

import threading
from enum import IntEnum
from typing import Any

from .callbacks import (
    pull_datagram_callback,
    pull_stream_callback,
    pull_timeout_callback,
    push_callback,
)
from .context import EndpointContext
from .credentials import IdentityKind, PeerIdentity
from .errors import (
    ConfigurationError,
    HandshakeFailed,
    HandshakeTimeout,
    MessageTooLarge,
    NoApplicationProtocol,
    NotEstablished,
    PeerAlert,
    SecurityError,
    SessionClosedError,
    UnknownIdentity,
    WrongKey,
)
from .gnutls_ffi import (
    GNUTLS_A_ACCESS_DENIED,
    GNUTLS_A_DECRYPT_ERROR,
    GNUTLS_A_NO_APPLICATION_PROTOCOL,
    GNUTLS_A_UNKNOWN_PSK_IDENTITY,
    GNUTLS_AL_FATAL,
    GNUTLS_CRD_CERTIFICATE,
    GNUTLS_CRD_PSK,
    GNUTLS_E_AGAIN,
    GNUTLS_E_FATAL_ALERT_RECEIVED,
    GNUTLS_E_INTERRUPTED,
    GNUTLS_E_LARGE_PACKET,
    GNUTLS_E_NO_APPLICATION_PROTOCOL,
    GNUTLS_E_TIMEDOUT,
    GNUTLS_SHUT_WR,
    check,
    ffi,
    lib,
    strerror,
    take_datum,
)
from .peer_auth import certificate_peer_identity, presented_identity

#: The shortest pause between two drives of a handshake that is waiting on the peer.
MIN_RETRY = 0.05


class SessionState(IntEnum):
    HANDSHAKING = 0
    ESTABLISHED = 1
    CLOSED = 2


RECV_BUFFER_SIZE = 2**14 + 512
_local = threading.local()


def _recv_buffer() -> Any:
    # One receive buffer per thread rather than 16 KB per session.
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = ffi.new("unsigned char[]", RECV_BUFFER_SIZE)
    return buf


def _alert_text(session: Any) -> str:
    g = lib()
    name = g.gnutls_alert_get_name(g.gnutls_alert_get(session))
    return ffi.string(name).decode() if name != ffi.NULL else "unknown alert"


class SecureSession:
    """Shared machinery of the datagram and stream sessions; not used directly."""

    __slots__ = ("_ctx", "_expires", "_gnutls_session", "_handle", "_in", "_out", "_records",
                 "_starved", "check_finished", "close_error", "deadline", "failure",
                 "identity", "offered_certificate", "psk_identity_offered", "resumed", "state")
    _in: Any  # the subclass's input queue: list of datagrams or bytearray of stream bytes
    _out: list[bytes]

    def __init__(self, ctx: EndpointContext, prestate: Any = None,
                 server_rpk: bool = False) -> None:
        g = lib()
        holder = ffi.new("gnutls_session_t *")
        check(g.gnutls_init(holder, ctx.init_flags), "gnutls_init", ConfigurationError)
        s = holder[0]
        self._gnutls_session: Any = s
        self._ctx = ctx
        self._records = 0  # DTLS records fed, not yet read back (-1: unknown)
        self._starved = False  # our last pull had nothing for GnuTLS
        self._handle: Any = ffi.new_handle(self)
        self.state = SessionState.HANDSHAKING
        self.identity: PeerIdentity | None = None
        self.failure: SecurityError | None = None
        self.close_error: SecurityError | None = None
        self.deadline: float | None = None
        self._expires: float | None = None
        self.resumed = False
        self.psk_identity_offered: bytes | None = None
        #: The raw public key or certificate the peer presented and we refused.
        self.offered_certificate: PeerIdentity | None = None
        #: Set (server side) when the input fed holds the peer's Finished: if GnuTLS then
        #: discards a record, the Finished did not verify (see ``drive``).
        self.check_finished = False
        try:
            ctx.configure(s, server_rpk)
        except BaseException:
            self.free()
            raise
        g.gnutls_session_set_ptr(s, self._handle)
        g.gnutls_transport_set_ptr(s, self._handle)
        g.gnutls_transport_set_push_function(s, push_callback)
        if ctx.datagram:
            g.gnutls_transport_set_pull_function(s, pull_datagram_callback)
            g.gnutls_transport_set_pull_timeout_function(s, pull_timeout_callback)
            if prestate is not None:
                g.gnutls_dtls_prestate_set(s, prestate)
        else:
            g.gnutls_transport_set_pull_function(s, pull_stream_callback)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def peer_identity(self) -> PeerIdentity | None:
        return self.identity if self.state is SessionState.ESTABLISHED else None

    def free(self) -> None:
        """Release the GnuTLS session (idempotent); the object is unusable afterwards."""
        if self._gnutls_session is not None:
            lib().gnutls_deinit(self._gnutls_session)
            self._gnutls_session = None
            self.state = SessionState.CLOSED
            self.deadline = None
        self._handle = None

    def __del__(self) -> None:
        self.free()

    def start(self, now: float) -> None:
        """Set the handshake deadline and (client side) produce the first flight."""
        if self._expires is None:
            self._expires = now + self._ctx.timing.handshake_timeout
        self.drive(now)

    # -- handshake -----------------------------------------------------------------------

    def drive(self, now: float) -> bool:
        """Advance the handshake with whatever was fed; True once it is complete.

        Raises ``HandshakeFailed`` (or a subclass) when the handshake cannot complete; any
        alert GnuTLS produced is then waiting in ``outgoing()``.
        """
        if self.state is SessionState.ESTABLISHED:
            return True
        if self.state is SessionState.CLOSED:
            raise SessionClosedError("the session is closed")
        if self._expires is None:
            self._expires = now + self._ctx.timing.handshake_timeout
        g = lib()
        check_finished = self.check_finished
        discarded = 0
        if check_finished:
            self.check_finished = False
            discarded = g.gnutls_record_get_discarded(self._gnutls_session)
        for _ in range(8):
            rc = g.gnutls_handshake(self._gnutls_session)
            if rc == 0:
                self._established()
                return True
            if rc in (GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED):
                break
            if g.gnutls_error_is_fatal(rc) or rc == GNUTLS_E_TIMEDOUT:
                self._fail_handshake(rc)
        if (check_finished and self.psk_identity_offered is not None
                and g.gnutls_record_get_discarded(self._gnutls_session) > discarded):
            self._fail_wrong_key()
        if now >= self._expires:
            self._fail(self._timeout_error())
        if self._ctx.datagram:
            # GnuTLS answers 0 ms in states where it has nothing to retransmit (e.g. after
            # the final flight of a handshake whose Finished the peer silently dropped);
            # taking that literally would drive the session in a tight loop until the
            # handshake expires, so look again no sooner than MIN_RETRY later.
            wait = max(g.gnutls_dtls_get_timeout(self._gnutls_session) / 1000.0, MIN_RETRY)
            self.deadline = min(now + wait, self._expires)
        else:
            self.deadline = self._expires
        return False

    def _timeout_error(self) -> HandshakeFailed:
        if self.failure is not None:
            return self.failure if isinstance(self.failure, HandshakeFailed) else \
                HandshakeFailed(self.failure.reason)
        if self.psk_identity_offered is not None:
            return HandshakeTimeout(
                f"handshake timed out after the peer offered PSK identity "
                f"{self.psk_identity_offered!r} (wrong key?)")
        return HandshakeTimeout("handshake timed out")

    def _fail(self, error: SecurityError) -> None:
        self.state = SessionState.CLOSED
        self.deadline = None
        self.close_error = error
        raise error

    def _fail_wrong_key(self) -> None:
        """The peer's Finished arrived after its PSK identity and GnuTLS discarded it: the
        record did not decrypt under that identity's key. DTLS would have us wait for a
        retransmission that cannot verify either, until the handshake times out; end it
        now, telling the peer (decrypt_error, RFC 5246 7.2.2), so both sides know at once.
        (A forged record could end a handshake this way only from the client's address,
        in the moment between its key exchange and its Finished, which share a flight.)"""
        g = lib()
        g.gnutls_alert_send(self._gnutls_session, GNUTLS_AL_FATAL, GNUTLS_A_DECRYPT_ERROR)
        identity = self.psk_identity_offered or b""
        self._fail(WrongKey(f"the Finished did not verify with the key of PSK identity "
                            f"{identity[:64]!r} (wrong key)"))

    def _fail_handshake(self, rc: int) -> None:
        g = lib()
        error = self.failure
        if rc == GNUTLS_E_FATAL_ALERT_RECEIVED:
            text = f"peer sent fatal alert: {_alert_text(self._gnutls_session)}"
            if error is None:
                error = PeerAlert(text, rc)
        elif rc == GNUTLS_E_TIMEDOUT:
            error = self._timeout_error()
        elif isinstance(error, UnknownIdentity) and self.psk_identity_offered is not None:
            # RFC 4279 2: say so, rather than GnuTLS' generic internal_error.
            g.gnutls_alert_send(self._gnutls_session, GNUTLS_AL_FATAL,
                                GNUTLS_A_UNKNOWN_PSK_IDENTITY)
        else:
            # GnuTLS leaves the alert to the application for locally detected failures.
            g.gnutls_alert_send_appropriate(self._gnutls_session, rc)
            if error is None:
                kind = (NoApplicationProtocol if rc == GNUTLS_E_NO_APPLICATION_PROTOCOL
                        else HandshakeFailed)
                error = kind(strerror(rc), rc)
        if error.gnutls_code is None:
            error.gnutls_code = rc
        self._fail(error)

    def _established(self) -> None:
        g = lib()
        s = self._gnutls_session
        self.resumed = bool(g.gnutls_session_is_resumed(s))
        try:
            auth = g.gnutls_auth_get_type(s)
            if auth == GNUTLS_CRD_PSK:
                self.identity = self._psk_peer_identity()
            elif auth == GNUTLS_CRD_CERTIFICATE:
                if self.identity is None or self.resumed:
                    # A resumed handshake skips the verify callback: judge the peer again
                    # against today's credentials, as a fresh handshake would.
                    self.identity = self._certificate_identity()
            else:
                raise HandshakeFailed(f"unexpected authentication type {auth}")
            self._check_established()
        except SecurityError as exc:
            alert = (GNUTLS_A_NO_APPLICATION_PROTOCOL if isinstance(exc, NoApplicationProtocol)
                     else GNUTLS_A_ACCESS_DENIED)
            g.gnutls_alert_send(s, GNUTLS_AL_FATAL, alert)
            self._fail(exc)
        self.state = SessionState.ESTABLISHED
        self.deadline = None
        self._records = -1  # the handshake's records are consumed; the rest is unknown

    def _check_established(self) -> None:
        ctx = self._ctx
        if ctx.server and ctx.alpn_required and self.alpn_protocol is None:
            raise NoApplicationProtocol(
                "the client did not negotiate ALPN "
                f"{' or '.join(p.decode() for p in ctx.alpn)}")

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol, if any."""
        if self._gnutls_session is None or not self._ctx.alpn:
            return None
        out = ffi.new("gnutls_datum_t *")
        if lib().gnutls_alpn_get_selected_protocol(self._gnutls_session, out) < 0:
            return None
        return str(ffi.buffer(out.data, out.size)[:].decode("ascii", "replace"))

    def _psk_peer_identity(self) -> PeerIdentity:
        ctx = self._ctx
        if not ctx.server:
            assert ctx.client_psk is not None
            return PeerIdentity(IdentityKind.PSK, psk_identity=ctx.client_psk.identity)
        out = ffi.new("gnutls_datum_t *")
        check(lib().gnutls_psk_server_get_username2(self._gnutls_session, out),
              "reading the PSK identity", HandshakeFailed)
        identity = ffi.buffer(out.data, out.size)[:] if out.data != ffi.NULL else b""
        if self.resumed and self._psk_key(identity) is None:
            raise self.failure or UnknownIdentity("PSK identity no longer known")
        return PeerIdentity(IdentityKind.PSK, psk_identity=identity)

    # -- callbacks from GnuTLS (see callbacks.py) ----------------------------------------

    def _psk_key(self, identity: bytes) -> bytes | None:
        self.psk_identity_offered = identity
        lookup = self._ctx.lookup
        try:
            key = lookup.psk_key(identity) if lookup is not None else None
        except Exception as exc:  # a store error must not escape into C
            self.failure = HandshakeFailed(f"PSK lookup failed: {exc!r}")
            return None
        if key is None:
            self.failure = UnknownIdentity(f"unknown PSK identity {identity!r}")
        return key

    def _verify_peer(self) -> bool:
        try:
            self.identity = self._certificate_identity()
        except SecurityError as exc:
            self.failure = exc
            self.offered_certificate = presented_identity(self._gnutls_session)
            return False
        except Exception as exc:  # a store error must not escape into C
            self.failure = HandshakeFailed(f"peer verification failed: {exc!r}")
            return False
        return True

    @property
    def offered_identity(self) -> PeerIdentity | None:
        """Who the peer claimed to be, for reporting a failed handshake: the PSK identity
        it offered (its first 64 bytes) or the key or certificate it presented."""
        if self.psk_identity_offered is not None:
            return PeerIdentity(IdentityKind.PSK, psk_identity=self.psk_identity_offered[:64])
        return self.offered_certificate

    def _certificate_identity(self) -> PeerIdentity:
        return certificate_peer_identity(self._gnutls_session, self._ctx)

    def _pull(self, size: int) -> bytes | None:
        raise NotImplementedError

    def _has_input(self) -> bool:
        raise NotImplementedError

    # -- records -------------------------------------------------------------------------

    def decrypt(self) -> list[bytes]:
        """Application data from the fed input, one item per record.

        On close_notify or a fatal error the state becomes CLOSED (``close_error`` says why,
        None for a clean close) and the data decrypted before that is still returned.
        """
        if self.state is not SessionState.ESTABLISHED:
            return []
        g = lib()
        s = self._gnutls_session
        buf = _recv_buffer()
        out: list[bytes] = []
        idle_rounds = 0
        self._starved = False
        while idle_rounds < 16:
            n = g.gnutls_record_recv(s, buf, RECV_BUFFER_SIZE)
            if n > 0:
                out.append(ffi.buffer(buf, n)[:])
                if self._records == 1 and not self._in:
                    # Every record fed has produced its data: asking GnuTLS again would
                    # only cost a pull that comes back empty.
                    self._records = 0
                    break
                if self._records > 0:
                    self._records -= 1
                continue
            if n == 0:
                self.state = SessionState.CLOSED
                break
            if n in (GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED):
                # AGAIN also follows a consumed non-application record (TLS 1.3 ticket,
                # retransmitted Finished, replayed record) while more records wait in
                # GnuTLS' buffer; only an AGAIN after our pull came back empty means done.
                if self._starved and not self._in:
                    self._records = 0
                    break
                self._starved = False
                idle_rounds += 1
                continue
            if g.gnutls_error_is_fatal(n):
                if n == GNUTLS_E_FATAL_ALERT_RECEIVED:
                    reason = f"peer sent fatal alert: {_alert_text(s)}"
                else:
                    reason = strerror(n)
                self.state = SessionState.CLOSED
                self.close_error = SessionClosedError(reason, n)
                break
            idle_rounds += 1  # warning alert, refused renegotiation...: keep reading
        return out

    def _send(self, data: bytes) -> None:
        if self.state is not SessionState.ESTABLISHED:
            if self.state is SessionState.CLOSED:
                raise SessionClosedError("the session is closed")
            raise NotEstablished("the handshake has not completed yet")
        if type(data) is not bytes:
            data = bytes(data)
        rc = lib().gnutls_record_send(self._gnutls_session, data, len(data))
        if rc != len(data):
            self._send_rest(data, rc)

    def _send_rest(self, data: bytes, rc: int) -> None:
        """The uncommon outcomes of a record send: errors, and partial stream sends."""
        g = lib()
        view = memoryview(data)
        for _ in range(1 + len(data) // 1024):
            if rc == GNUTLS_E_LARGE_PACKET:
                limit = g.gnutls_dtls_get_data_mtu(self._gnutls_session)
                raise MessageTooLarge(f"{len(data)} bytes do not fit one record "
                                      f"(at most {limit} at this MTU)", rc)
            if rc < 0 and rc not in (GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED):
                self.state = SessionState.CLOSED
                self.close_error = SessionClosedError(strerror(rc), rc)
                raise self.close_error
            if rc > 0:
                view = view[rc:]  # a stream session sends at most one record per call
                if not view:
                    return
            rc = g.gnutls_record_send(self._gnutls_session, ffi.from_buffer(view), len(view))
            if rc == len(view):
                return
        raise SessionClosedError("GnuTLS made no progress sending a record")

    def _bye(self) -> None:
        if self.state is SessionState.ESTABLISHED:
            lib().gnutls_bye(self._gnutls_session, GNUTLS_SHUT_WR)
        self.state = SessionState.CLOSED
        self.deadline = None

    @property
    def cipher_suite(self) -> str:
        if self._gnutls_session is None:
            return ""
        name = lib().gnutls_ciphersuite_get(self._gnutls_session)
        return ffi.string(name).decode() if name != ffi.NULL else ""

    def session_data(self) -> bytes | None:
        """Resumption data (a session ticket) for a later client session, if any."""
        if self._gnutls_session is None or self.state is not SessionState.ESTABLISHED:
            return None
        out = ffi.new("gnutls_datum_t *")
        if lib().gnutls_session_get_data2(self._gnutls_session, out) < 0:
            return None
        data = take_datum(out)
        return data or None

    def prefer_server_rpk(self) -> None:
        """Switch a server session that has not read its ClientHello yet to presenting our
        raw public key (the client accepts one; see ``EndpointContext.priority_server_rpk``)."""
        if self._gnutls_session is not None and self._ctx.priority_server_rpk is not None:
            check(lib().gnutls_priority_set(self._gnutls_session, self._ctx.priority_server_rpk),
                  "gnutls_priority_set", ConfigurationError)

    def set_session_data(self, data: bytes) -> None:
        """Offer resumption from ``session_data()`` of an earlier session (client, before start)."""
        if self._gnutls_session is None:
            raise SessionClosedError("the session is closed")
        check(lib().gnutls_session_set_data(self._gnutls_session, data, len(data)),
              "setting resumption data", ConfigurationError)


class DtlsSession(SecureSession):
    """A DTLS session: each fed item is one datagram; each outgoing item is one datagram."""

    __slots__ = ()

    def __init__(self, ctx: EndpointContext, prestate: Any = None,
                 server_rpk: bool = False) -> None:
        self._in: list[bytes] = []
        self._out: list[bytes] = []
        super().__init__(ctx, prestate, server_rpk)

    def feed(self, datagram: bytes, records: int = 0) -> None:
        """Queue one datagram; ``records`` (from records.record_count) saves a read."""
        self._in.append(datagram)
        self._records = self._records + records if records and self._records >= 0 else -1

    def outgoing(self) -> list[bytes]:
        out = self._out
        if out:
            self._out = []
        return out

    def encrypt(self, data: bytes) -> list[bytes]:
        """Protect one application datagram; returns the record datagram(s) to send."""
        self._send(data)
        return self.outgoing()

    def close(self) -> list[bytes]:
        """Send close_notify (when established); returns the datagrams to transmit."""
        self._bye()
        return self.outgoing()

    def _has_input(self) -> bool:
        return bool(self._in)


class TlsSession(SecureSession):
    """A TLS session over a byte stream: feed what TCP delivered, send what ``outgoing`` has."""

    __slots__ = ()

    def __init__(self, ctx: EndpointContext, server_rpk: bool = False) -> None:
        self._in: bytearray = bytearray()
        self._out: list[bytes] = []
        super().__init__(ctx, None, server_rpk)

    def feed(self, data: bytes) -> None:
        self._in += data

    def outgoing(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def encrypt(self, data: bytes) -> bytes:
        self._send(data)
        return self.outgoing()

    def close(self) -> bytes:
        self._bye()
        return self.outgoing()

    def _pull(self, size: int) -> bytes | None:
        if not self._in:
            self._starved = True
            return None
        chunk = bytes(self._in[:size])
        del self._in[:size]
        return chunk

    def _has_input(self) -> bool:
        return bool(self._in)
