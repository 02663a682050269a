"""DTLS 1.2 / TLS engine over GnuTLS (cffi ABI mode): PSK, raw public keys, X.509.

Sans-IO: the classes here take bytes and timestamps and return bytes, events and deadlines;
the UDP/TCP transports own the sockets and the clock. See ``DtlsServer``, ``DtlsClient``,
``TlsServer``/``TlsServerConnection`` and ``TlsClientConnection``.
"""

from __future__ import annotations

from .config import DtlsServerConfig, ServerCredentials, TlsServerConfig
from .credentials import (
    CertificateUsage,
    Credentials,
    IdentityKind,
    PeerIdentity,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
    generate_p256_key,
)
from .dtls_client import DtlsClient
from .dtls_server import DtlsServer, DtlsServerStats
from .errors import (
    BadRecord,
    CertificateRejected,
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
from .events import ApplicationData, Event, HandshakeCompleted, SessionClosed
from .gnutls_ffi import GnuTLSUnavailable, gnutls_version
from .lookup import CredentialLookup, InMemoryCredentialLookup
from .session import DtlsSession, SessionState, TlsSession
from .tls_stream import TlsClientConnection, TlsServer, TlsServerConnection

__all__ = [
    "ApplicationData",
    "BadRecord",
    "CertificateRejected",
    "CertificateUsage",
    "ConfigurationError",
    "CredentialLookup",
    "Credentials",
    "DtlsClient",
    "DtlsServer",
    "DtlsServerConfig",
    "DtlsServerStats",
    "DtlsSession",
    "Event",
    "GnuTLSUnavailable",
    "HandshakeCompleted",
    "HandshakeFailed",
    "HandshakeTimeout",
    "IdentityKind",
    "InMemoryCredentialLookup",
    "MessageTooLarge",
    "NoApplicationProtocol",
    "NotEstablished",
    "PeerAlert",
    "PeerIdentity",
    "PskCredentials",
    "RpkCredentials",
    "SecurityError",
    "ServerCredentials",
    "SessionClosed",
    "SessionClosedError",
    "SessionState",
    "TlsClientConnection",
    "TlsServer",
    "TlsServerConfig",
    "TlsServerConnection",
    "TlsSession",
    "UnknownIdentity",
    "WrongKey",
    "X509Credentials",
    "generate_p256_key",
    "gnutls_version",
]
