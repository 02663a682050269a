"""CoAP over DTLS (coaps://) on asyncio: the UDP endpoint with the sans-IO DTLS engine
between its socket and its message layer.

One socket serves both directions: peers that connect to us get server sessions from a
:class:`DtlsServer` (when server credentials are given); peers we send requests to get a
:class:`DtlsClient` each, created on first use with the :class:`ClientSecurity` registered
for that address. Plaintext sent before a handshake completes waits for it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiolwm2m.coap.errors import RequestRejected
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.security.config import DtlsServerConfig, ServerCredentials
from aiolwm2m.security.credentials import Credentials, PeerIdentity
from aiolwm2m.security.dtls_client import DtlsClient
from aiolwm2m.security.dtls_server import DtlsServer
from aiolwm2m.security.errors import (
    CertificateRejected,
    HandshakeTimeout,
    PeerAlert,
    SecurityError,
    UnknownIdentity,
    WrongKey,
)
from aiolwm2m.security.events import ApplicationData, Event, HandshakeCompleted, SessionClosed

from .udp import RECEIVE_BATCH, Address, UdpEndpoint

log = logging.getLogger(__name__)

#: Called at the moment a peer's handshake with our DTLS server fails: (peer, the identity
#: it offered in principal form or None, reason token, what happened).
HandshakeFailureHook = Callable[[Any, str | None, str, str], None]

# Most specific first: WrongKey and PeerAlert are HandshakeFailed too.
_FAILURE_REASONS: tuple[tuple[type[SecurityError], str], ...] = (
    (WrongKey, "dtls-bad-key"),
    (UnknownIdentity, "dtls-unknown-identity"),
    (CertificateRejected, "dtls-certificate"),
    (HandshakeTimeout, "dtls-timeout"),
    (PeerAlert, "dtls-alert"),
)


def failure_reason(error: SecurityError) -> str:
    """The short, stable token (a metrics label) for why a handshake failed."""
    for kind, token in _FAILURE_REASONS:
        if isinstance(error, kind):
            return token
    return "dtls-handshake"


@dataclass(frozen=True)
class ClientSecurity:
    """How we authenticate to one server, and how we check it."""

    credentials: Credentials
    server_public_key: bytes | None = None
    server_name: str | None = None
    resumption: bool = True
    handshake_timeout: float = 30.0


class _ClientSide:
    __slots__ = ("client", "pending")

    def __init__(self, client: DtlsClient) -> None:
        self.client = client
        self.pending: list[bytes] = []


class DtlsEndpoint(UdpEndpoint):
    scheme = "coaps"

    def __init__(self, sock: socket.socket, *, server_credentials: ServerCredentials | None,
                 dtls_config: DtlsServerConfig | None = None, **kwargs: Any) -> None:
        self.dtls_server = (DtlsServer(server_credentials, dtls_config)
                            if server_credentials is not None else None)
        self._clients: dict[Any, _ClientSide] = {}
        self._client_security: dict[Any, ClientSecurity] = {}
        self._identities: dict[Any, str] = {}
        #: Called with (peer, identity string) when a handshake completes and with
        #: (peer, None) when a session ends.
        self.on_session: Callable[[Any, str | None], None] = lambda peer, ident: None
        #: Reports each failed handshake of a peer with our server as it happens; without
        #: it, the endpoint logs them (throttled: a peer can fail as often as it likes).
        self.on_handshake_failure: HandshakeFailureHook | None = None
        self._failure_log = LogThrottle(log, interval=10.0, burst=10)
        # Every peer completed a cookie exchange, so its address is its own: no reply of
        # ours can be aimed at a forged victim, and error replies need no cutting.
        kwargs.setdefault("error_reply_slack", None)
        super().__init__(sock, **kwargs)

    # -- security configuration -----------------------------------------------------------

    async def secure(self, remote: Address, security: ClientSecurity) -> Address:
        """Use ``security`` for the DTLS session to ``remote`` (before requesting)."""
        peer = await self._normalize(remote)
        self._client_security[peer] = security
        return peer

    def identity_of(self, remote: Address) -> str | None:
        return self._identities.get(remote)

    def peer_identity(self, remote: Address) -> PeerIdentity | None:
        if self.dtls_server is not None:
            ident = self.dtls_server.peer_identity(remote)
            if ident is not None:
                return ident
        side = self._clients.get(remote)
        return side.client.peer_identity if side is not None else None

    # -- receive path ---------------------------------------------------------------------

    def _on_readable(self) -> None:
        recv = self.sock.recvfrom
        now = self.clock()
        self._in_batch = True
        try:
            for _ in range(RECEIVE_BATCH):
                try:
                    data, addr = recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    log.debug("recvfrom: %s", e)
                    continue
                side = self._clients.get(addr)
                if side is not None:
                    events = side.client.receive_datagram(data, now)
                elif self.dtls_server is not None:
                    events = self.dtls_server.receive_datagram(data, addr, now)
                else:
                    continue
                self._security_events(events, now)
        finally:
            self._in_batch = False
        self._after_io()

    def _security_events(self, events: list[Event], now: float) -> None:
        for ev in events:
            if isinstance(ev, ApplicationData):
                request = self.layer.receive(ev.data, ev.peer, now)
                if request is not None:
                    self.dispatcher.handle(request, now)
            elif isinstance(ev, HandshakeCompleted):
                ident = ev.identity.key if ev.identity is not None else None
                if ident is not None:
                    self._identities[ev.peer] = ident
                side = self._clients.get(ev.peer)
                if side is not None:
                    for data in side.pending:
                        side.client.send(data)
                    side.pending.clear()
                self.on_session(ev.peer, ident)
            elif isinstance(ev, SessionClosed):
                self._identities.pop(ev.peer, None)
                ours = self._clients.pop(ev.peer, None) is not None
                self.layer.fail_peer(ev.peer, RequestRejected(
                    f"DTLS session with {ev.peer!r} ended: {ev.reason}"))
                self.on_session(ev.peer, None)
                if ev.error is None:
                    continue
                if not ours and not ev.established:
                    self._handshake_failed(ev, ev.error)
                else:
                    self._failure_log.info("session-ended", "DTLS session with %r ended: %s",
                                           ev.peer, ev.error)

    def _handshake_failed(self, ev: SessionClosed, error: SecurityError) -> None:
        offered = ev.offered.key if ev.offered is not None else None
        reason = failure_reason(error)
        hook = self.on_handshake_failure
        if hook is not None:
            hook(ev.peer, offered, reason, error.reason)
        else:
            self._failure_log.warning(reason, "DTLS handshake from %r (%s) failed: %s",
                                      ev.peer, offered or "no identity offered", error.reason)

    # -- send path ------------------------------------------------------------------------

    def _after_io(self) -> None:
        # Unlike plain UDP, the engine produces datagrams of its own (handshake flights,
        # alerts), so there may be something to send even when the message layer has not.
        self._flush()
        if self.layer.events:
            self._process_events()
        deadlines = [d for d in (self.layer.next_deadline(),
                                 self.dtls_server.next_deadline() if self.dtls_server else None,
                                 *(s.client.next_deadline() for s in self._clients.values()))
                     if d is not None]
        self._wakeup.at(min(deadlines, default=None))

    def _flush(self) -> None:
        out = self.layer.outbox
        if out:
            now = self.clock()
            for data, peer in out:
                self._encrypt(data, peer, now)
            out.clear()
        self._send_records()

    def _encrypt(self, data: bytes, peer: Any, now: float) -> None:
        server = self.dtls_server
        side = self._clients.get(peer)
        if side is None and server is not None and server.peer_identity(peer) is not None:
            try:
                server.send(peer, data, now)
            except SecurityError as e:
                log.debug("cannot send to %r: %s", peer, e)
            return
        if side is None:
            security = self._client_security.get(peer)
            if security is None:
                log.warning("no DTLS session with %r and no client credentials for it", peer)
                self.layer.fail_peer(peer, RequestRejected(f"no DTLS credentials for {peer!r}"))
                return
            client = DtlsClient(security.credentials, server_public_key=security.server_public_key,
                                server_name=security.server_name, peer=peer,
                                resumption=security.resumption,
                                handshake_timeout=security.handshake_timeout)
            side = self._clients[peer] = _ClientSide(client)
            self._security_events(client.start(now), now)
        if side.client.established:
            side.client.send(data)
        else:
            side.pending.append(data)

    def _send_records(self) -> None:
        records: list[tuple[bytes, Any]] = []
        if self.dtls_server is not None:
            records.extend(self.dtls_server.outgoing())
        for peer, side in self._clients.items():
            records.extend((r, peer) for r in side.client.outgoing())
        self._send_all(records)

    # -- timers ---------------------------------------------------------------------------

    def _on_timer(self) -> None:
        now = self.clock()
        if self.dtls_server is not None:
            self._security_events(self.dtls_server.handle_timeout(now), now)
        for side in list(self._clients.values()):
            self._security_events(side.client.handle_timeout(now), now)
        self.layer.handle_timers(now)
        self._after_io()

    async def close(self) -> None:
        if self.closed:
            return
        if self.dtls_server is not None:
            self.dtls_server.close()
        for side in self._clients.values():
            side.client.close()
        self._send_records()
        await super().close()
