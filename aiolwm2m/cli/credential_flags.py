"""The flags a command that connects out over coaps:// or coaps+tcp:// takes for its own
credentials (PSK, RPK or X.509); :func:`aiolwm2m.cli.client_commands.client_security` turns
them into an ``AccountSecurity``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_credential_flags(parser: argparse.ArgumentParser, title: str, description: str,
                         peer: str) -> None:
    """``peer`` names the other side in the help texts ("server", "RD")."""
    sec = parser.add_argument_group(title, description)
    sec.add_argument("--psk-identity", metavar="TEXT", help="PSK identity (UTF-8 text)")
    sec.add_argument("--psk-key", metavar="HEX", help="PSK key, hex")
    sec.add_argument("--rpk-key", type=Path, metavar="FILE",
                     help="RPK: our EC private key (PEM or DER)")
    sec.add_argument("--server-public-key", type=Path, metavar="FILE",
                     help=f"RPK: the {peer}'s public key (PEM or DER SubjectPublicKeyInfo)")
    sec.add_argument("--certificate", type=Path, metavar="FILE",
                     help="X.509: our certificate, or chain leaf first (PEM or DER)")
    sec.add_argument("--private-key", type=Path, metavar="FILE",
                     help="X.509: the private key of --certificate (PEM or DER)")
    sec.add_argument("--trust-anchor", type=Path, metavar="FILE",
                     help="X.509: the certificate --certificate-usage names: the CA or trust "
                          f"anchor (usages 0, 2) or the {peer}'s own certificate (1, 3)")
    sec.add_argument("--certificate-usage", type=int, choices=[0, 1, 2, 3], default=3,
                     help="X.509 certificate usage (RFC 6698, as Security /0/x/15; default "
                          "3, domain-issued certificate)")
    sec.add_argument("--sni", metavar="NAME",
                     help=f"TLS server name (default: the URI's host); also what the {peer}'s "
                          "certificate must name under usages 0-2")
