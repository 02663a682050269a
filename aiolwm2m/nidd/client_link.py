"""The client library over NIDD: the device's side of the SCEF emulator's UE socket.

With ``ClientConfig.nidd`` set, the server accounts whose Server URI is the NIDD one
(``coap://nidd.invalid``: a device without IP has nothing to resolve; a bootstrap server
provisions it so, with binding N) are reached through the SCEF: the client's CoAP
messages travel as MO data frames (``aiolwm2m.nidd.ue_link``) and the
server's arrive as MT data, on one UDP socket per client, the device's one radio. Queue
mode's radio switch is the device's power saving: asleep, the client DETACHes (the SCEF
buffers for it) and drops what arrives; awake, it ATTACHes again and the SCEF delivers what
it held. Registrations use binding N.

Each account's packets carry the RDS ports Object 11 provisions (resources 31-33, OSR-001)
and are told apart by them: the link address of an account is ``("scs-as", ports)``. The
uplink is kept within the rate control the network announced (25/27) or the server wrote
(26): packets beyond it are not sent (counted in ``rate_drops``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx

from aiolwm2m.client.account_security import ServerTarget
from aiolwm2m.client.endpoint import ClientEndpoint, bound_socket
from aiolwm2m.client.server_link import ServerLink
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.transport.site import RenderResult, Resource, Site

from . import ue_link
from .apn_profile import ApnProfileInstance
from .attachment import NIDD_SERVER_URI, NiddAttachment
from .quotas import TokenBucket

if TYPE_CHECKING:
    from aiolwm2m.client.client import LwM2MClient

log = logging.getLogger(__name__)
SCS_AS = "scs-as"
NIDD_HOST = NIDD_SERVER_URI.split("//", 1)[1]
NO_PORTS = 256
APN_OBJECT = 11


def link_address(ports: tuple[int, int] | None) -> tuple[str, int]:
    return (SCS_AS, NO_PORTS if ports is None else ports[0] * 16 + ports[1])


def ports_of(address: Any) -> tuple[int | None, int | None]:
    code = int(address[1])
    if code >= NO_PORTS:
        return None, None
    return code // 16, code % 16


async def discover_ue_link(scef_url: str, timeout: float = 10.0) -> tuple[str, int]:
    """The emulator's UE socket, as its control API tells."""
    async with httpx.AsyncClient(timeout=timeout) as http:
        r = await http.get(scef_url.rstrip("/") + "/emulator/v1/info")
        r.raise_for_status()
        ue = r.json()["ueLink"]
        return str(ue["host"]), int(ue["port"])


class NiddClientEndpoint(ClientEndpoint):
    """A UDP socket to the SCEF's UE side, speaking UE-link frames for one UE."""

    def __init__(self, sock: socket.socket, *, ue: str, scef: tuple[str, int],
                 groups: tuple[str, ...] = (), profile: ApnProfileInstance | None = None,
                 **kwargs: Any) -> None:
        self.ue = ue
        self.scef_address = scef
        self.groups = groups
        self.profile = profile
        self.attached = asyncio.Event()
        self.network: dict[str, Any] = {}
        self.rejects: dict[str, int] = {}
        self.rate_drops = 0
        self._bucket: TokenBucket | None = None
        self._bucket_key: tuple[int, float] | None = None
        self._log = LogThrottle(log, interval=10.0, burst=5)
        super().__init__(sock, **kwargs)

    @classmethod
    async def connect(cls, attachment: NiddAttachment, *, site: Site,
                      params: TransmissionParameters, profile: ApnProfileInstance | None
                      ) -> NiddClientEndpoint:
        host, port = attachment.ue_link or await discover_ue_link(attachment.scef_url)
        scef = (host, port)
        family = socket.AF_INET6 if ":" in scef[0] else socket.AF_INET
        sock = bound_socket("::" if family == socket.AF_INET6 else "0.0.0.0", 0)
        endpoint = cls(sock, ue=attachment.ident, scef=scef, groups=attachment.groups,
                       profile=profile, site=site, params=params)
        endpoint.attach()
        return endpoint

    # -- the network side -------------------------------------------------------------------

    def attach(self) -> None:
        self.attached.clear()
        self.sock.sendto(ue_link.attach(self.ue, self.groups), self.scef_address)

    def detach(self) -> None:
        self.attached.clear()
        frame = ue_link.encode(ue_link.Frame(ue_link.DETACH, self.ue))
        self.sock.sendto(frame, self.scef_address)

    @property
    def asleep(self) -> bool:
        return self.gate.asleep

    @asleep.setter
    def asleep(self, value: bool) -> None:
        """Power saving: the SCEF buffers while we sleep, and delivers when we attach."""
        if value == self.gate.asleep:
            return
        self.gate.asleep = value
        if value:
            self.detach()
        else:
            self.attach()

    def _on_readable(self) -> None:
        recv = self.sock.recvfrom
        now = self.clock()
        self._in_batch = True
        try:
            for _ in range(256):
                try:
                    data, addr = recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue
                if (str(addr[0]), int(addr[1])) != self.scef_address:
                    continue  # only the SCEF speaks for the network
                try:
                    frame = ue_link.decode(data)
                except ue_link.UeLinkError as e:
                    self._log.info("bad-frame", "bad frame from the SCEF: %s", e)
                    continue
                if frame.ue != self.ue:
                    continue
                if frame.kind == ue_link.MT_DATA:
                    peer = link_address((frame.port_ue, frame.port_scef)
                                        if frame.port_ue is not None
                                        and frame.port_scef is not None else None)
                    request = self.layer.receive(frame.data, peer, now)
                    if request is not None:
                        self.dispatcher.handle(request, now)
                elif frame.kind == ue_link.ATTACHED:
                    self._attached(frame.control)
                elif frame.kind == ue_link.REJECT:
                    self._rejected(frame.control)
        finally:
            self._in_batch = False
        self._after_io()

    def _attached(self, control: dict[str, Any]) -> None:
        self.network = control
        self.attached.set()
        profile = self.profile
        if profile is not None:
            rate = control.get("apnRateControl")
            unit = control.get("uplinkTimeUnit")
            if isinstance(rate, int) and rate > 0 and isinstance(unit, int):
                profile.set(25, rate)
                if profile.get(27) is None:
                    profile.set(27, unit)

    def _rejected(self, control: dict[str, Any]) -> None:
        cause = str(control.get("cause", "?"))[:40]
        self.rejects[cause] = self.rejects.get(cause, 0) + 1
        self._log.warning(cause, "the SCEF refused an uplink packet: %s", cause)
        if cause == "NOT_ATTACHED" and not self.gate.asleep:
            self.attach()  # the SCEF forgot us (restarted): attach again

    # -- sending ------------------------------------------------------------------------------

    def _uplink_allowed(self) -> bool:
        profile = self.profile
        limit = profile.uplink_limit() if profile is not None else None
        if limit is None:
            return True
        now = time.monotonic()
        if limit != self._bucket_key:
            self._bucket_key = limit
            self._bucket = TokenBucket(limit[0], limit[1], now)
        bucket = self._bucket
        assert bucket is not None
        if bucket.wait(1, now) > 0:
            return False
        bucket.take(1, now)
        return True

    def _send_all(self, out: list[tuple[bytes, Any]]) -> None:
        framed: list[tuple[bytes, Any]] = []
        for data, peer in out:
            if not self._uplink_allowed():
                self.rate_drops += 1
                self._log.info("rate", "uplink rate control: a packet was not sent")
                continue
            port_ue, port_scef = ports_of(peer)
            framed.append((ue_link.mo_data(self.ue, data, port_ue, port_scef),
                           self.scef_address))
        super()._send_all(framed)

    async def _normalize(self, remote: Any) -> Any:
        return remote  # the SCS/AS has no IP address to resolve


class NiddLinks:
    """A client's NIDD side: the one endpoint every account's link shares."""

    def __init__(self, client: LwM2MClient, attachment: NiddAttachment) -> None:
        self.client = client
        self.attachment = attachment
        self.endpoint: NiddClientEndpoint | None = None
        self._opening = asyncio.Lock()
        existing = client.tree.instances(APN_OBJECT)
        self.profile = next((i for i in existing if isinstance(i, ApnProfileInstance)), None)
        if self.profile is None and not existing:
            self.profile = ApnProfileInstance(0)
            client.tree.add(self.profile, announce=False)

    @staticmethod
    def serves(target: ServerTarget) -> bool:
        """Accounts whose Server URI is the NIDD one (``coap://nidd.invalid``) go over NIDD;
        others (a bootstrap server reached over IP at the factory) as their URI says."""
        return target.uri.host == NIDD_HOST

    async def link(self, target: ServerTarget) -> ServerLink:
        async with self._opening:
            if self.endpoint is None or self.endpoint.closed:
                site = Site(well_known_core=False)
                site.add((), _ClientRoot(self.client), prefix=True)
                self.endpoint = await NiddClientEndpoint.connect(
                    self.attachment, site=site, params=self.client.config.transmission,
                    profile=self.profile)
                self.endpoint.asleep = self.client.radio.asleep
                try:
                    await asyncio.wait_for(self.endpoint.attached.wait(), 5.0)
                except TimeoutError:
                    log.warning("no answer to ATTACH from the SCEF at %s yet",
                                self.endpoint.scef_address)
        ports = self.profile.rds_ports() if self.profile is not None else None
        return ServerLink(target, self.endpoint, link_address(ports), shared=True,
                          binding="N")

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()


class _ClientRoot(Resource):
    """Everything arriving goes to the client, which routes it as it routes its shared UDP
    endpoint's requests: by link address (each account is told apart by its RDS ports)."""

    observable = True

    def __init__(self, client: LwM2MClient) -> None:
        super().__init__()
        self.client = client

    def render(self, request: Message) -> RenderResult:
        return self.client.handle_request(request)
