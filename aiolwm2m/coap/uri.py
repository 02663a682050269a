"""CoAP URIs (RFC 7252 section 6, RFC 8323 section 8): parsing into options and back."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

DEFAULT_PORTS = {
    "coap": 5683,
    "coaps": 5684,
    "coap+tcp": 5683,
    "coaps+tcp": 5684,
    # LwM2M over HTTP/2 (aiolwm2m.http2): h2c with prior knowledge, and TLS with ALPN h2.
    "http2": 80,
    "https": 443,
}


class UriError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CoapUri:
    scheme: str
    host: str
    port: int
    path: tuple[str, ...]
    query: tuple[str, ...]

    @property
    def secure(self) -> bool:
        return self.scheme in ("coaps", "coaps+tcp", "https")

    @property
    def reliable(self) -> bool:
        return self.scheme.endswith("+tcp") or self.scheme in ("http2", "https")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS.get(self.scheme) == self.port else f":{self.port}"
        path = "".join("/" + quote(s, safe="") for s in self.path)
        query = ("?" + "&".join(quote(q, safe="=") for q in self.query)) if self.query else ""
        return f"{self.scheme}://{host}{port}{path}{query}"


def parse_uri(uri: str) -> CoapUri:
    """Split ``coap://host:port/a/b?x=1&y`` into its parts; fragments are rejected."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UriError(f"unsupported scheme {parts.scheme!r} in {uri!r}")
    if parts.fragment:
        raise UriError(f"CoAP URIs have no fragment: {uri!r}")
    host = parts.hostname
    if not host:
        raise UriError(f"no host in {uri!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as e:
        raise UriError(f"bad port in {uri!r}: {e}") from None
    raw_path = parts.path
    path: tuple[str, ...] = ()
    if raw_path and raw_path != "/":
        path = tuple(unquote(s) for s in raw_path[1:].split("/"))
    query = tuple(unquote(q) for q in parts.query.split("&")) if parts.query else ()
    return CoapUri(scheme, host, port, path, query)
