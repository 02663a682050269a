"""Finding a Resource Directory's registration resource (RFC 9176 section 4).

``GET /.well-known/core?rt=core.rd*`` asked of one host, or of every CoAP node on a
multicast group (All-CoRE-Nodes: 224.0.1.187, ff0x::fd); the first answer naming a
``core.rd`` resource wins. Multicast answers come from the responders' unicast addresses,
which a request/response exchange cannot match, so multicast discovery uses a socket of
its own and matches answers by token.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from aiolwm2m.coap.codec import decode_udp, encode_udp
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.linkformat import LinkFormatError, parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.uri import DEFAULT_PORTS, UriError, parse_uri

log = logging.getLogger(__name__)

RT_RD = "core.rd"
DISCOVERY_QUERY = "rt=core.rd*"
#: Discovery answers read; more would be a flood, not Resource Directories.
_MAX_ANSWERS = 64


@dataclass(frozen=True, slots=True)
class RdTarget:
    """Where to send the registration: an RD host and its registration resource."""

    host: str
    port: int
    path: tuple[str, ...]

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"coap://{host}:{self.port}/" + "/".join(self.path)


def is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_multicast
    except ValueError:
        return False


def registration_resource(payload: bytes, host: str, port: int) -> RdTarget | None:
    """The ``core.rd`` link of a discovery answer from ``host``/``port``, resolved."""
    try:
        links = parse_link_format(payload, max_links=256)
    except LinkFormatError:
        return None
    for link in links:
        if RT_RD not in link.values("rt"):
            continue
        target = link.target
        if "://" in target:
            try:
                uri = parse_uri(target)
            except UriError:
                continue
            return RdTarget(uri.host, uri.port, uri.path)
        return RdTarget(host, port, uri_path(target))
    return None


def uri_path(reference: str) -> tuple[str, ...]:
    """Uri-Path segments of an absolute path reference; a trailing slash is an empty last
    segment (RFC 7252 section 6.4), which RDs such as aiocoap's use."""
    text = reference.split("?", 1)[0].lstrip("/")
    return tuple(text.split("/")) if text else ()


def discovery_request(token: bytes, mid: int, *, confirmable: bool) -> Message:
    msg = Message.request(Code.GET, ".well-known/core", query=[DISCOVERY_QUERY],
                          confirmable=confirmable, token=token)
    msg.mid = mid
    return msg


class _Answers(asyncio.DatagramProtocol):
    def __init__(self, token: bytes) -> None:
        self.token = token
        self.found: asyncio.Future[RdTarget] = asyncio.get_running_loop().create_future()
        self.answers = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.answers += 1
        if self.found.done() or self.answers > _MAX_ANSWERS:
            return
        try:
            msg = decode_udp(data)
        except CoapError:
            return
        if msg.token != self.token or msg.code != Code.CONTENT:
            return
        target = registration_resource(msg.payload, str(addr[0]), int(addr[1]))
        if target is not None:
            self.found.set_result(target)


async def discover_multicast(group: str, port: int = DEFAULT_PORTS["coap"], *,
                             interface: str | None = None, timeout: float = 3.0
                             ) -> RdTarget | None:
    """Ask a multicast group for an RD (a NON request; RFC 7252 section 8). ``interface``:
    the IPv4 address of the interface to send from, or an IPv6 interface name or index."""
    family = socket.AF_INET6 if ":" in group else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            if interface:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                socket.inet_aton(interface))
            sock.bind(("0.0.0.0", 0))
        else:
            if interface:
                index = int(interface) if interface.isdigit() else socket.if_nametoindex(
                    interface)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.bind(("::", 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    token = os.urandom(4)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: _Answers(token), sock=sock)
    try:
        data = encode_udp(discovery_request(token, int.from_bytes(os.urandom(2), "big"),
                                            confirmable=False))
        transport.sendto(data, (group, port))
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(proto.found), timeout)
        return None
    finally:
        transport.close()
