"""A server's own DTLS/TLS credentials from the PEM/DER files named on a command line."""

from __future__ import annotations

from pathlib import Path

from aiolwm2m.security.credentials import CertificateUsage, RpkCredentials, X509Credentials
from aiolwm2m.security.errors import SecurityError


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror or e}") from None


def server_credentials(rpk_key: Path | None, certificate: Path | None,
                       private_key: Path | None, trust_anchors: Path | None
                       ) -> tuple[RpkCredentials | None, X509Credentials | None]:
    """The RPK key pair offered to RPK clients and the X.509 chain for certificate clients
    (whose certificates must chain to ``trust_anchors``); ValueError says what is wrong."""
    rpk = x509 = None
    try:
        if rpk_key is not None:
            rpk = RpkCredentials(read_file(rpk_key, "--rpk-key"))
        if certificate is not None or private_key is not None:
            if certificate is None or private_key is None:
                raise ValueError("X.509 needs both --certificate and --private-key")
            anchors = (read_file(trust_anchors, "--trust-anchors")
                       if trust_anchors is not None else b"")
            x509 = X509Credentials(read_file(certificate, "--certificate"),
                                   read_file(private_key, "--private-key"), anchors,
                                   CertificateUsage.CA_CONSTRAINT)
        elif trust_anchors is not None:
            raise ValueError("--trust-anchors needs --certificate and --private-key")
    except SecurityError as e:
        raise ValueError(f"server credentials: {e.reason}") from None
    return rpk, x509
