"""A throw-away test PKI made with the openssl CLI (EC P-256 keys everywhere).

Layout: root CA -> intermediate CA -> server ("localhost", SAN DNS:localhost, IP:127.0.0.1)
and client ("client1"); root CA -> "client2" and "server_direct" directly (libcoap's OpenSSL
build sends only the end-entity certificate, so its peers need a one-level chain); an
unrelated "rogue" CA -> "rogue" client and server certificates; one self-signed end-entity
certificate. Also RPK key files in the format libcoap reads (``-M``: EC PRIVATE KEY PEM).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiolwm2m.security.credentials import CertificateUsage, X509Credentials

_EXT = """
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def server_x509(self) -> X509Credentials:
        """The server's chain and key, peers checked against the root (CA constraint)."""
        return X509Credentials(self.read("server_chain.pem"), self.read("server.key"),
                               self.read("root.pem"), CertificateUsage.CA_CONSTRAINT)


def _key(d: Path, name: str) -> None:
    _run("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", f"{name}.key", cwd=d)


def _cert(d: Path, name: str, cn: str, issuer: str | None, ext: str) -> None:
    _key(d, name)
    if issuer is None:
        _run("req", "-new", "-x509", "-key", f"{name}.key", "-out", f"{name}.pem",
             "-subj", f"/CN={cn}", "-days", "30", "-config", "ext.cnf", "-extensions", ext,
             cwd=d)
        return
    _run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile", "ext.cnf",
         "-extensions", ext, cwd=d)


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    (d / "ext.cnf").write_text("[req]\ndistinguished_name = dn\n[dn]\n" + _EXT)
    _cert(d, "root", "Test Root CA", None, "ca")
    _cert(d, "inter", "Test Intermediate CA", "root", "ca")
    _cert(d, "server", "localhost", "inter", "server")
    _cert(d, "server_direct", "localhost", "root", "server")
    _cert(d, "client1", "client1", "inter", "client")
    _cert(d, "client2", "client2", "root", "client")
    _cert(d, "rogue_ca", "Rogue CA", None, "ca")
    _cert(d, "rogue_client", "client1", "rogue_ca", "client")
    _cert(d, "rogue_server", "localhost", "rogue_ca", "server")
    _cert(d, "selfsigned", "localhost", None, "selfsigned")
    for leaf in ("server", "client1", "rogue_server", "rogue_client"):
        issuer = "inter" if leaf in ("server", "client1") else "rogue_ca"
        (d / f"{leaf}_chain.pem").write_bytes((d / f"{leaf}.pem").read_bytes()
                                              + (d / f"{issuer}.pem").read_bytes())
    (d / "client2_chain.pem").write_bytes((d / "client2.pem").read_bytes())
    for name in ("rpk_server", "rpk_client", "rpk_other"):
        _key(d, name)
        _run("ec", "-in", f"{name}.key", "-pubout", "-out", f"{name}.pub", cwd=d)
    return Pki(d)
