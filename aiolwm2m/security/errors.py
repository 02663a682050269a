"""The security layer's exception hierarchy.

Transports map these once, at the edge, to connection events and log lines; the GnuTLS error
code (when there is one) travels along so a log can name the exact library condition.
"""

from __future__ import annotations


class SecurityError(Exception):
    """Base of every error raised by ``aiolwm2m.security``."""

    def __init__(self, reason: str, gnutls_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.gnutls_code = gnutls_code


class ConfigurationError(SecurityError):
    """Credentials or settings that cannot work (bad PEM, missing key, unknown option)."""


class HandshakeFailed(SecurityError):
    """The handshake did not complete: alert, timeout, rejected peer, no common suite."""


class HandshakeTimeout(HandshakeFailed):
    """No progress before the handshake deadline (also how a wrong PSK shows up in DTLS)."""


class UnknownIdentity(HandshakeFailed):
    """The peer named a PSK identity, raw public key or certificate we do not know."""


class WrongKey(HandshakeFailed):
    """The peer's Finished did not verify under the key of the PSK identity it offered:
    its key is not ours. DTLS drops such records silently, so without this a wrong key
    only shows up as a handshake timeout."""


class PeerAlert(HandshakeFailed):
    """The peer ended the handshake with a fatal alert."""


class CertificateRejected(HandshakeFailed):
    """The peer's certificate or raw public key failed verification."""


class NoApplicationProtocol(HandshakeFailed):
    """The TLS client negotiated none of the required ALPN protocols."""


class BadRecord(SecurityError):
    """A record that cannot be processed (malformed, too large for the path MTU...)."""


class MessageTooLarge(BadRecord):
    """Application data larger than one DTLS record can carry at the configured MTU."""


class SessionClosedError(SecurityError):
    """The session is closed (close_notify, fatal alert, eviction): no more traffic.

    Named with the ``Error`` suffix so it does not clash with the ``SessionClosed`` event.
    """


class NotEstablished(SecurityError):
    """Application data was offered before the handshake completed."""
