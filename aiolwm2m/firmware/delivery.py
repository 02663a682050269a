"""Images offered for download while an update needs them: ``/fw/{token}`` on every CoAP
listener (coap, coaps, coap+tcp, coaps+tcp) and on the HTTP port.

Each update job gets a random token, and its Package URI names it; the token works only
while the job delivers, only for the job's device, and names nothing else. Who may fetch:

* over DTLS or TLS, the identity the device's registration is bound to;
* over plain TCP, whoever holds the token (a connection proves its address);
* over plain UDP, whoever holds the token and sends from the host the device registered
  from: a 1 KiB block answers a request of a few dozen bytes, so a forged source address
  must not turn this into an amplifier against anyone but the device itself.

Anything else gets the same 4.04 as an unknown token (and is counted as a refusal).

Blocks are cut here rather than by the dispatcher: the server sees every block a device
fetches (the job's progress, a queue-mode device kept awake while it downloads), holds
one copy of an image whatever the number of devices fetching it, and caches nothing per
device. The block size is the one the device asks for (16 to 1024 bytes; a BERT request
on a TCP connection gets 1024-byte blocks).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, NoReturn

from aiolwm2m.coap.block import BERT_SZX, BlockValue
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadOption, NotFound, ServiceUnavailable
from aiolwm2m.coap.message import Message
from aiolwm2m.store.records import Registration
from aiolwm2m.transport.site import Resource

from .images import ImageStore
from .methods import TRANSPORT_SCHEMES
from .records import FirmwareImage

log = logging.getLogger(__name__)

OCTET_STREAM = 42
#: Retry-After of the HTTP 503 while the service is stopped.
RETRY_AFTER = 5
#: How often a queue-mode device that is downloading is marked awake again.
_WAKE_EVERY = 10.0
_WILDCARDS = frozenset({"", "::", "0.0.0.0"})


def new_token() -> str:
    return secrets.token_urlsafe(16)


class Delivery:
    """One job's image on offer."""

    __slots__ = ("content", "endpoint", "etag", "image", "job_id", "on_progress", "served",
                 "token", "woke_at")

    def __init__(self, token: str, job_id: str, endpoint: str, image: FirmwareImage,
                 content: bytes) -> None:
        self.token = token
        self.job_id = job_id
        self.endpoint = endpoint
        self.image = image
        self.content = content
        self.etag = bytes.fromhex(image.sha256[:16])
        #: How far into the image the device has fetched (bytes).
        self.served = 0
        self.on_progress: Callable[[Delivery], None] | None = None
        self.woke_at = 0.0

    def fetched(self, end: int) -> None:
        if end > self.served:
            self.served = end
            if self.on_progress is not None:
                self.on_progress(self)


class Deliveries:
    """The images on offer, by token; one copy of each image's bytes, shared."""

    def __init__(self, server: Any, images: ImageStore | None) -> None:
        self.server = server
        self.images = images
        self._by_token: dict[str, Delivery] = {}
        self._contents: dict[str, tuple[bytes, int]] = {}
        #: Where HTTP downloads are served (set once the web server listens): its port, its
        #: address when it listens on one (None: a wildcard), and "https" when it has TLS.
        self.http_port: int | None = None
        self.http_host: str | None = None
        self.http_scheme = "http"
        #: The host put in package URIs (None: the local address that routes to the device).
        self.public_host: str | None = None
        self.bytes_served = 0
        self.blocks_served = 0
        #: The service stopped: downloads are asked to come back later (5.03, HTTP 503).
        self.stopped = False

    def __len__(self) -> int:
        return len(self._by_token)

    async def open(self, token: str, job_id: str, endpoint: str, image: FirmwareImage
                   ) -> Delivery:
        old = self._by_token.get(token)
        if old is not None:
            return old
        held = self._contents.get(image.sha256)
        if held is None:
            if self.images is None:
                raise RuntimeError("no image store yet")
            content = await self.images.content(image.sha256)
            held = self._contents.get(image.sha256) or (content, 0)
        self._contents[image.sha256] = (held[0], held[1] + 1)
        delivery = Delivery(token, job_id, endpoint, image, held[0])
        self._by_token[token] = delivery
        return delivery

    def close(self, token: str) -> None:
        delivery = self._by_token.pop(token, None)
        if delivery is None:
            return
        content, refs = self._contents[delivery.image.sha256]
        if refs <= 1:
            del self._contents[delivery.image.sha256]
        else:
            self._contents[delivery.image.sha256] = (content, refs - 1)

    def find(self, token: str) -> Delivery | None:
        return self._by_token.get(token)

    def served(self, delivery: Delivery, start: int, size: int) -> None:
        """A block (or HTTP range) went out."""
        self.blocks_served += 1
        self.bytes_served += size
        delivery.fetched(start + size)
        now = time.monotonic()
        if now - delivery.woke_at >= min(_WAKE_EVERY, self.server.config.awake_time / 2):
            delivery.woke_at = now
            reg = self.server.registrations.get(delivery.endpoint)
            if reg is not None and reg.queue_mode:
                # Fetching is talking to us: keep a queue-mode device's requests flowing.
                self.server.queue.woke(reg)

    # -- where -----------------------------------------------------------------------------

    def offered(self) -> set[str]:
        """The schemes images are served over now."""
        out = {scheme for name, scheme in TRANSPORT_SCHEMES.items()
               if name in self.server.transports}
        if self.http_port is not None:
            out.add(self.http_scheme)
        return out

    def uri(self, delivery: Delivery, scheme: str, reg: Registration) -> str:
        if scheme in ("http", "https"):
            if self.http_port is None or scheme != self.http_scheme:
                raise ValueError(f"{scheme} downloads are not served")
            port = self.http_port
            bound = self.http_host
        else:
            transport = {v: k for k, v in TRANSPORT_SCHEMES.items()}[scheme]
            port = self.server.port_of(transport)
            bound = str(self.server.config.host)
        host = self.host_for(reg, bound)
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}/fw/{delivery.token}"

    def host_for(self, reg: Registration, bound: str | None) -> str:
        """The host in a URI for ``reg``'s device, of a listener bound to ``bound``."""
        if self.public_host:
            return self.public_host
        if bound is not None and bound not in _WILDCARDS:
            return bound
        return local_address_towards(str(reg.address[0]))


def local_address_towards(host: str) -> str:
    """The local address the system routes to ``host`` from (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            local = str(s.getsockname()[0])
    except OSError:
        local = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    return plain_host(local)


def plain_host(host: str) -> str:
    """IPv4-mapped IPv6 addresses as IPv4, zone ids dropped: what a device can dial."""
    text = host.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class FirmwareResource(Resource):
    """``GET /fw/{token}`` on one CoAP listener."""

    def __init__(self, deliveries: Deliveries, transport: str, endpoint: Any, *,
                 reliable: bool) -> None:
        super().__init__()
        self.deliveries = deliveries
        self.transport = transport
        self.endpoint = endpoint
        self.reliable = reliable

    def links(self) -> list[Any]:
        return []  # nothing to discover: the tokens are the devices' to know

    def render_get(self, request: Message) -> Message:
        if self.deliveries.stopped:
            raise ServiceUnavailable("restarting")
        sub = self.subpath(request)
        delivery = self.deliveries.find(sub[0]) if len(sub) == 1 else None
        if delivery is None:
            self._refuse(request, "firmware-unknown-token", None, "no delivery with this token")
        why = self._wrong_peer(delivery, request)
        if why:
            self._refuse(request, "firmware-wrong-peer", delivery.endpoint, why)
        block = request.block2
        if block is None:
            num, szx = 0, 6
        else:
            # BERT (on a connection only: the dispatcher refuses it on datagrams) is served
            # in 1024-byte blocks, whose numbers count the same 1024-byte units.
            num, szx = block.num, 6 if block.szx == BERT_SZX else min(block.szx, 6)
        size = 1 << (szx + 4)
        content = delivery.content
        start = num * size
        if start >= len(content):
            raise BadOption("block beyond the end of the image")
        part = content[start:start + size]
        response = request.response(Code.CONTENT, part, OCTET_STREAM)
        response.etag = delivery.etag
        response.block2 = BlockValue(num, start + size < len(content), szx)
        if num == 0 or request.size2 is not None:
            response.size2 = len(content)
        self.deliveries.served(delivery, start, len(part))
        return response

    def _wrong_peer(self, delivery: Delivery, request: Message) -> str:
        reg: Registration | None = self.deliveries.server.registrations.get(delivery.endpoint)
        if reg is None:
            return "the device is not registered"
        identity = self.endpoint.identity_of(request.remote)
        if identity is not None or reg.identity is not None:
            if identity != reg.identity:
                return (f"fetched as {identity or 'NoSec'}, the registration is bound to "
                        f"{reg.identity or 'NoSec'}")
            return ""
        if self.reliable:
            return ""
        if plain_host(str(request.remote[0])) != plain_host(str(reg.address[0])):
            return f"fetched from {request.remote[0]}, registered from {reg.address[0]}"
        return ""

    def _refuse(self, request: Message, reason: str, endpoint: str | None, detail: str
                ) -> NoReturn:
        remote = request.remote
        self.deliveries.server.refusals.refused(
            transport=self.transport, reason=reason, endpoint=endpoint, detail=detail,
            peer=f"{remote[0]}:{remote[1]}")
        # The same short answer whatever was wrong: the peer learns nothing.
        raise NotFound("no such firmware")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """An HTTP ``Range`` header (RFC 9110 section 14) for a body of ``size`` bytes: the
    ``(start, end)`` (end exclusive) of a single satisfiable byte range; None when there is
    no header or it is not one we take (then the whole body is sent, as the RFC allows);
    False when it is a byte range beyond the end (416)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or len(first) > 20 or len(last) > 20:
        return None
    # isdigit alone admits characters such as "²" that int() refuses
    if not all(part.isascii() and (part.isdigit() or not part) for part in (first, last)):
        return None
    if size == 0:
        # an empty body has no byte to select; the whole (empty) body answers
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            return False
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None
    if start >= size:
        return False
    return start, end
