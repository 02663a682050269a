"""PEM <-> DER in pure Python (RFC 7468 textual encoding): no library round trip needed."""

from __future__ import annotations

import base64
import binascii
import re

from .errors import ConfigurationError

_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL
)


def is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def pem_blocks(data: bytes, *labels: str) -> list[tuple[str, bytes]]:
    """Every PEM block as ``(label, DER)``, in file order; only ``labels`` when given."""
    wanted = {label.encode() for label in labels}
    out: list[tuple[str, bytes]] = []
    for match in _BLOCK.finditer(data):
        label = match.group(1)
        if wanted and label not in wanted:
            continue
        body = match.group(2)
        if b":" in body:
            # RFC 1421 headers (encrypted legacy keys) precede a blank line.
            raise ConfigurationError(f"PEM block {label.decode()} has headers: encrypted?")
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error as exc:
            raise ConfigurationError(f"PEM block {label.decode()} is not base64: {exc}") from exc
        out.append((label.decode(), der))
    return out


def der_to_pem(der: bytes, label: str) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(line + b"\n" for line in lines),
                     f"-----END {label}-----\n".encode()])


def certificates_der(data: bytes) -> list[bytes]:
    """The certificates of a PEM bundle or a single DER certificate, as DER."""
    if is_pem(data):
        certs = [der for _, der in pem_blocks(data, "CERTIFICATE")]
        if not certs:
            raise ConfigurationError("no CERTIFICATE block in the PEM data")
        return certs
    if data[:1] != b"\x30":
        raise ConfigurationError("certificate data is neither PEM nor DER")
    return [data]


def private_key_der(data: bytes) -> bytes:
    """The first private key of PEM data (SEC1, PKCS#1 or PKCS#8) as DER; DER passes through."""
    if not is_pem(data):
        return data
    for label, der in pem_blocks(data):
        if label.endswith("PRIVATE KEY") and "ENCRYPTED" not in label:
            return der
    raise ConfigurationError("no unencrypted PRIVATE KEY block in the PEM data")


def public_key_der(data: bytes) -> bytes | None:
    """The first ``PUBLIC KEY`` (SubjectPublicKeyInfo) block of PEM data, if any."""
    if not is_pem(data):
        return data
    blocks = pem_blocks(data, "PUBLIC KEY")
    return blocks[0][1] if blocks else None


def private_key_pem_label(der: bytes) -> str:
    """The PEM label of a DER private key: PKCS#8, SEC1 (EC) or PKCS#1 (RSA)."""
    # PKCS#8 PrivateKeyInfo opens SEQUENCE { INTEGER 0, SEQUENCE { algorithm ...
    # SEC1 ECPrivateKey opens     SEQUENCE { INTEGER 1, OCTET STRING ...
    # PKCS#1 RSAPrivateKey opens  SEQUENCE { INTEGER 0, INTEGER modulus ...
    if len(der) < 8:
        return "PRIVATE KEY"
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    version, following = der[i : i + 3], der[i + 3 : i + 4]
    if version == b"\x02\x01\x01" and following == b"\x04":
        return "EC PRIVATE KEY"
    if version == b"\x02\x01\x00" and following == b"\x02":
        return "RSA PRIVATE KEY"
    return "PRIVATE KEY"


def private_key_as_pem(key: bytes) -> bytes:
    """A private key as PEM, whether given as PEM or as DER (labelled by its structure)."""
    return key if is_pem(key) else der_to_pem(key, private_key_pem_label(key))
