"""Base URIs of registrations and the resolution of link targets against them (RFC 3986
section 5.2, for the URI forms the RD deals in: ``scheme://authority[/path]``).

``urllib.parse.urljoin`` resolves only schemes it knows, and knows none of CoAP's.
"""

from __future__ import annotations

from aiolwm2m.lwm2m.errors import shown

from .errors import bad_request

#: Schemes a registration's ``base`` may use.
BASE_SCHEMES = frozenset({"coap", "coaps", "coap+tcp", "coaps+tcp", "coap+ws", "coaps+ws",
                          "http", "https"})
#: The scheme of a base made from the address a registration came from, by the name the
#: server gives the transport.
TRANSPORT_SCHEMES = {"udp": "coap", "dtls": "coaps", "tcp": "coap+tcp", "tls": "coaps+tcp"}
MAX_BASE_LENGTH = 255
_FORBIDDEN_IN_BASE = frozenset(' "<>\\^`{|}?#\t\r\n')


def base_from_address(transport: str, address: tuple[object, ...]) -> str:
    host = str(address[0])
    if ":" in host:
        host = f"[{host}]"
    return f"{TRANSPORT_SCHEMES.get(transport, 'coap')}://{host}:{address[1]}"


def check_base(text: str) -> str:
    """A ``base`` parameter: an absolute URI with a scheme we know, an authority and no
    query or fragment (4.00 otherwise)."""
    if len(text) > MAX_BASE_LENGTH:
        raise bad_request(f"base longer than {MAX_BASE_LENGTH} characters")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in BASE_SCHEMES:
        raise bad_request(f"base {shown(text, 40)} is not a coap(s)/http(s) URI")
    authority = rest.split("/", 1)[0]
    if not authority or any(c in _FORBIDDEN_IN_BASE for c in text):
        raise bad_request(f"base {shown(text, 40)} is not scheme://host[:port][/path]")
    return text


def _split(uri: str) -> tuple[str, str, str]:
    """``scheme``, ``//authority`` and path (with any query) of an absolute URI."""
    scheme, _, rest = uri.partition(":")
    if rest.startswith("//"):
        slash = rest.find("/", 2)
        if slash < 0:
            return scheme, rest, ""
        return scheme, rest[:slash], rest[slash:]
    return scheme, "", rest


def _has_scheme(ref: str) -> bool:
    colon = ref.find(":")
    if colon <= 0:
        return False
    head = ref[:colon]
    return head[0].isalpha() and all(c.isalnum() or c in "+-." for c in head) and (
        "/" not in head)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    if "." not in path:
        return path
    out: list[str] = []
    rest = path
    while rest:
        if rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith("./") or rest.startswith("/./"):
            rest = rest[2:]
        elif rest == "/.":
            rest = "/"
        elif rest.startswith("/../") or rest == "/..":
            rest = "/" + rest[4:] if rest.startswith("/../") else "/"
            if out:
                out.pop()
        elif rest in (".", ".."):
            rest = ""
        else:
            cut = rest.find("/", 1)
            if cut < 0:
                cut = len(rest)
            out.append(rest[:cut])
            rest = rest[cut:]
    return "".join(out)


def resolve(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` (an absolute URI)."""
    if _has_scheme(ref):
        return ref
    scheme, authority, path = _split(base)
    if ref.startswith("//"):
        return f"{scheme}:{ref}"
    if not ref:
        return base
    if ref.startswith("/"):
        return f"{scheme}:{authority}{_remove_dot_segments(ref)}"
    if ref.startswith(("?", "#")):
        return f"{scheme}:{authority}{path.split('?', 1)[0].split('#', 1)[0]}{ref}"
    directory = path.split("?", 1)[0]
    directory = directory[:directory.rfind("/") + 1] if "/" in directory else "/"
    return f"{scheme}:{authority}{_remove_dot_segments(directory + ref)}"
