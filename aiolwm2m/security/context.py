"""Per-endpoint GnuTLS state shared by all sessions of one server or one client.

An ``EndpointContext`` owns the native credentials, the priority cache entry, the ticket key
and the certificate verifier, and knows how to configure a fresh ``gnutls_session_t``. Every
session keeps a reference to its context, so the native credentials outlive the sessions
that point at them (GnuTLS does not copy credentials into sessions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .callbacks import psk_server_callback, verify_callback
from .credentials import (
    Credentials,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
)
from .errors import ConfigurationError
from .gnutls_ffi import (
    GNUTLS_ALPN_MANDATORY,
    GNUTLS_ALPN_SERVER_PRECEDENCE,
    GNUTLS_CERT_REQUIRE,
    GNUTLS_CLIENT,
    GNUTLS_CRD_CERTIFICATE,
    GNUTLS_CRD_PSK,
    GNUTLS_DATAGRAM,
    GNUTLS_ENABLE_RAWPK,
    GNUTLS_KEY_DIGITAL_SIGNATURE,
    GNUTLS_NAME_DNS,
    GNUTLS_NO_TICKETS,
    GNUTLS_NONBLOCK,
    GNUTLS_PSK_KEY_RAW,
    GNUTLS_SERVER,
    GNUTLS_X509_FMT_DER,
    GNUTLS_X509_FMT_PEM,
    check,
    datum,
    ffi,
    lib,
)
from .keys import normalize_spki
from .lookup import CredentialLookup
from .pem import private_key_as_pem
from .priorities import Modes, priority_cache, priority_string
from .x509 import CertificateVerifier, is_ip_literal


@dataclass(slots=True)
class Timing:
    """Handshake timing: GnuTLS retransmits from ``retransmit_ms`` (doubling) and we give up
    after ``handshake_timeout`` seconds."""

    handshake_timeout: float = 30.0
    retransmit_ms: int = 1000
    mtu: int = 1232  # 1280 (IPv6 minimum) minus IPv6 and UDP headers


class EndpointContext:
    """Native credentials and session set-up for one server or one client."""

    def __init__(self, *, server: bool, datagram: bool, modes: Modes, timing: Timing,
                 priority: str | None = None) -> None:
        # First, so that close() (run by __del__) finds them if a later step raises.
        self._psk_creds: Any = None
        self._cert_creds: Any = None
        self._ticket_key: Any = None
        self._alpn_array: Any = None
        self._keep: list[Any] = []
        self.closed = False
        self.server = server
        self.datagram = datagram
        self.modes = modes
        self.timing = timing
        self.priority_text = priority or priority_string(modes, datagram=datagram, server=server)
        self.priority = priority_cache(self.priority_text)
        # Only servers offering both RPK and X.509 need to choose per ClientHello.
        self.priority_server_rpk: Any = None
        if server and modes.rpk and modes.x509 and priority is None:
            self.priority_server_rpk = priority_cache(
                priority_string(modes, datagram=datagram, server=True, server_rpk=True))
        self.lookup: CredentialLookup | None = None
        self.client_psk: PskCredentials | None = None
        self.expected_server_rpk: bytes | None = None
        self.server_name: str | None = None
        self.verifier: CertificateVerifier | None = None
        self.alpn: tuple[bytes, ...] = ()
        self.alpn_required = False
        self.resumption = False
        flags = GNUTLS_NONBLOCK | (GNUTLS_SERVER if server else GNUTLS_CLIENT)
        if datagram:
            flags |= GNUTLS_DATAGRAM
        if modes.rpk:
            flags |= GNUTLS_ENABLE_RAWPK
        self.init_flags = flags

    # -- construction helpers ------------------------------------------------------------

    @classmethod
    def for_server(cls, *, datagram: bool, lookup: CredentialLookup, psk: bool,
                   rpk: RpkCredentials | None, x509: X509Credentials | None, timing: Timing,
                   psk_hint: bytes | None = None, resumption: bool = True,
                   alpn: tuple[str, ...] = (), alpn_required: bool = False,
                   priority: str | None = None) -> EndpointContext:
        modes = Modes(psk=psk, rpk=rpk is not None, x509=x509 is not None)
        ctx = cls(server=True, datagram=datagram, modes=modes, timing=timing, priority=priority)
        try:
            ctx.lookup = lookup
            ctx.resumption = resumption
            if psk:
                ctx._server_psk(psk_hint)
            if rpk is not None or x509 is not None:
                ctx._certificates(rpk, x509)
            if x509 is not None:
                ctx.verifier = CertificateVerifier(x509)
            if resumption:
                key = ffi.new("gnutls_datum_t *")
                check(lib().gnutls_session_ticket_key_generate(key), "ticket key",
                      ConfigurationError)
                ctx._ticket_key = key
            ctx._set_alpn(alpn, alpn_required)
        except BaseException:
            ctx.close()
            raise
        return ctx

    @classmethod
    def for_client(cls, credentials: Credentials, *, datagram: bool, timing: Timing,
                   server_public_key: bytes | None = None, server_name: str | None = None,
                   resumption: bool = False, alpn: tuple[str, ...] = (),
                   priority: str | None = None) -> EndpointContext:
        modes = Modes(psk=isinstance(credentials, PskCredentials),
                      rpk=isinstance(credentials, RpkCredentials),
                      x509=isinstance(credentials, X509Credentials))
        ctx = cls(server=False, datagram=datagram, modes=modes, timing=timing, priority=priority)
        try:
            ctx.server_name = server_name
            ctx.resumption = resumption
            if not resumption:
                ctx.init_flags |= GNUTLS_NO_TICKETS
            if isinstance(credentials, PskCredentials):
                ctx._client_psk(credentials)
            elif isinstance(credentials, RpkCredentials):
                if server_public_key is None:
                    raise ConfigurationError("an RPK client needs the server's public key")
                ctx.expected_server_rpk = normalize_spki(server_public_key)
                ctx._certificates(credentials, None)
            else:
                ctx._certificates(None, credentials)
                ctx.verifier = CertificateVerifier(credentials)
            ctx._set_alpn(alpn, False)
        except BaseException:
            ctx.close()
            raise
        return ctx

    def _server_psk(self, hint: bytes | None) -> None:
        g = lib()
        creds = ffi.new("gnutls_psk_server_credentials_t *")
        check(g.gnutls_psk_allocate_server_credentials(creds), "PSK credentials",
              ConfigurationError)
        self._psk_creds = creds[0]
        g.gnutls_psk_set_server_credentials_function2(self._psk_creds, psk_server_callback)
        if hint:
            check(g.gnutls_psk_set_server_credentials_hint(self._psk_creds, hint), "PSK hint",
                  ConfigurationError)

    def _client_psk(self, psk: PskCredentials) -> None:
        g = lib()
        creds = ffi.new("gnutls_psk_client_credentials_t *")
        check(g.gnutls_psk_allocate_client_credentials(creds), "PSK credentials",
              ConfigurationError)
        self._psk_creds = creds[0]
        user, _u = datum(psk.identity)
        key, _k = datum(psk.key)
        check(g.gnutls_psk_set_client_credentials2(self._psk_creds, user, key, GNUTLS_PSK_KEY_RAW),
              "setting the PSK", ConfigurationError)
        self.client_psk = psk

    def _certificates(self, rpk: RpkCredentials | None, x509: X509Credentials | None) -> None:
        g = lib()
        creds = ffi.new("gnutls_certificate_credentials_t *")
        check(g.gnutls_certificate_allocate_credentials(creds), "certificate credentials",
              ConfigurationError)
        self._cert_creds = creds[0]
        if rpk is not None:
            spki, _s = datum(rpk.public_key_der)
            key, _k = datum(rpk.private_key_der)
            check(g.gnutls_certificate_set_rawpk_key_mem(
                self._cert_creds, spki, key, GNUTLS_X509_FMT_DER, ffi.NULL,
                GNUTLS_KEY_DIGITAL_SIGNATURE, ffi.NULL, 0, 0),
                "loading the raw public key pair", ConfigurationError)
        if x509 is not None and x509.cert_chain_pem:
            chain, _c = datum(x509.cert_chain_pem)
            key, _k = datum(private_key_as_pem(x509.private_key_pem))
            check(g.gnutls_certificate_set_x509_key_mem2(
                self._cert_creds, chain, key, GNUTLS_X509_FMT_PEM, ffi.NULL, 0),
                "loading the certificate chain and key", ConfigurationError)
        # Peer verification is ours (certificate usages, RPK allow-lists): see session.py.
        g.gnutls_certificate_set_verify_function(self._cert_creds, verify_callback)

    def _set_alpn(self, alpn: tuple[str, ...], required: bool) -> None:
        if not alpn:
            return
        if self.datagram:
            raise ConfigurationError("ALPN is only used with TLS over TCP here")
        self.alpn = tuple(p.encode() for p in alpn)
        self.alpn_required = required
        array = ffi.new("gnutls_datum_t[]", len(self.alpn))
        for i, proto in enumerate(self.alpn):
            buf = ffi.new("unsigned char[]", proto)
            self._keep.append(buf)
            array[i].data = buf
            array[i].size = len(proto)
        self._alpn_array = array

    # -- per session ---------------------------------------------------------------------

    @property
    def chooses_certificate_type(self) -> bool:
        """True when the server must peek at the ClientHello (see ``priority_server_rpk``)."""
        return self.priority_server_rpk is not None

    def configure(self, session: Any, server_rpk: bool = False) -> None:
        """Apply priorities, credentials and extensions to a new ``gnutls_session_t``.

        ``server_rpk``: the client accepts a raw public key from us; present ours.
        """
        if self.closed:
            raise ConfigurationError("the endpoint's credentials were closed")
        g = lib()
        priority = self.priority_server_rpk if server_rpk and self.priority_server_rpk \
            else self.priority
        check(g.gnutls_priority_set(session, priority), "gnutls_priority_set",
              ConfigurationError)
        if self._psk_creds is not None:
            check(g.gnutls_credentials_set(session, GNUTLS_CRD_PSK, self._psk_creds),
                  "PSK credentials", ConfigurationError)
        if self._cert_creds is not None:
            check(g.gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, self._cert_creds),
                  "certificate credentials", ConfigurationError)
            if self.server:
                g.gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE)
        if self.server and self._ticket_key is not None:
            check(g.gnutls_session_ticket_enable_server(session, self._ticket_key),
                  "session tickets", ConfigurationError)
        if not self.server and self.server_name and not is_ip_literal(self.server_name):
            name = self.server_name.encode("idna")
            check(g.gnutls_server_name_set(session, GNUTLS_NAME_DNS, name, len(name)), "SNI",
                  ConfigurationError)
        if self._alpn_array is not None:
            # MANDATORY only refuses a client that offers ALPN without any of ours (it is
            # talking to another service); a client without ALPN is judged in session.py.
            flags = GNUTLS_ALPN_SERVER_PRECEDENCE | GNUTLS_ALPN_MANDATORY if self.server else 0
            check(g.gnutls_alpn_set_protocols(session, self._alpn_array, len(self.alpn), flags),
                  "ALPN", ConfigurationError)
        if self.datagram:
            g.gnutls_dtls_set_mtu(session, self.timing.mtu)
            g.gnutls_dtls_set_timeouts(session, self.timing.retransmit_ms,
                                       int(self.timing.handshake_timeout * 1000) + 1000)
        else:
            g.gnutls_handshake_set_timeout(session, 0)

    def close(self) -> None:
        """Free the native credentials; only once no session uses this context any more."""
        self.closed = True
        g = lib()
        if self._psk_creds is not None:
            if self.server:
                g.gnutls_psk_free_server_credentials(self._psk_creds)
            else:
                g.gnutls_psk_free_client_credentials(self._psk_creds)
            self._psk_creds = None
        if self._cert_creds is not None:
            g.gnutls_certificate_free_credentials(self._cert_creds)
            self._cert_creds = None
        if self._ticket_key is not None:
            if self._ticket_key.data != ffi.NULL:
                g.gnutls_free(self._ticket_key.data)
            self._ticket_key = None
        if self.verifier is not None:
            self.verifier.close()
            self.verifier = None

    def __del__(self) -> None:
        self.close()
