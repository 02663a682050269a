"""Simulated devices over NIDD (``aiolwm2m simulate --nidd``): the whole fleet behind one UDP
socket on the SCEF emulator's UE side.

Device ``i`` is the UE ``<endpoint name>@<domain>``, member of ``group`` (the emulator learns
the membership from its ATTACH), and every frame names it, so one socket carries them all
and the fleet's shared message layer sees each device as its own peer. The server serves
them with one group configuration (``aiolwm2m server --nidd-group GROUP``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.attachment import NIDD_SERVER_URI
from aiolwm2m.nidd.client_link import discover_ue_link, link_address
from aiolwm2m.nidd.t8_fields import T8FormatError, external_id

from .device import ServerTarget

log = logging.getLogger(__name__)

Receiver = Callable[[int, bytes, Any], None]
_BATCH = 512
_BUFFER = 1 << 22
#: What the fleet's layer sees as the server's address (no RDS ports).
SCS_AS_ADDRESS = link_address(None)


@dataclass(frozen=True)
class NiddFleetLink:
    #: The SCEF emulator's URL (its UE socket is asked there) or its UE socket directly.
    scef_url: str
    group: str = "sim@nidd.example"
    domain: str = "nidd.example"
    ue_link: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        try:
            external_id(self.group, "group")
            external_id(f"x@{self.domain}", "domain")
        except T8FormatError as e:
            raise ValueError(f"NIDD {e.param}: {e.reason}") from None

    def server_target(self) -> ServerTarget:
        return ServerTarget(NIDD_SERVER_URI, SCS_AS_ADDRESS, 1)

    def ident(self, endpoint: str) -> str:
        return f"{endpoint}@{self.domain}"

    @classmethod
    async def resolve(cls, scef_url: str, group: str = "sim@nidd.example",
                      domain: str = "nidd.example") -> NiddFleetLink:
        """The link with the emulator's UE socket asked from its control API."""
        return cls(scef_url, group, domain, await discover_ue_link(scef_url))

    def pool_factory(self, endpoint_of: Callable[[int], str]
                     ) -> Callable[[Receiver, Callable[[], None]], NiddDevicePool]:
        ue_socket = self.ue_link
        if ue_socket is None:
            raise ValueError("resolve the SCEF emulator's UE socket first "
                             "(NiddFleetLink.resolve)")

        def make(receive: Receiver, batch_done: Callable[[], None]) -> NiddDevicePool:
            return NiddDevicePool(self, endpoint_of, ue_socket, receive, batch_done)
        return make


class NiddDevicePool:
    """The fleet's DevicePool over the UE link: ``open`` attaches a device, ``sendto`` sends
    its MO data, MT data comes back to the device it names."""

    def __init__(self, link: NiddFleetLink, endpoint_of: Callable[[int], str],
                 scef: tuple[str, int], receive: Receiver,
                 batch_done: Callable[[], None]) -> None:
        self.link = link
        self.endpoint_of = endpoint_of
        self.scef = scef
        self.receive = receive
        self.batch_done = batch_done
        self.idents: dict[int, str] = {}
        self.indexes: dict[str, int] = {}
        self.attached = 0
        self.rejects = 0
        self.sent = self.received = self.send_errors = 0
        family = socket.AF_INET6 if ":" in scef[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                self._sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER)
            self._sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._ready)

    def __len__(self) -> int:
        return len(self.idents)

    def open(self, index: int) -> tuple[Any, ...]:
        ident = self.link.ident(self.endpoint_of(index))
        self.idents[index] = ident
        self.indexes[ident] = index
        self._send(ue_link.attach(ident, (self.link.group,)))
        return ("nidd", index)

    def close_socket(self, index: int) -> None:
        ident = self.idents.pop(index, None)
        if ident is not None:
            self.indexes.pop(ident, None)

    def sendto(self, index: int, data: bytes, address: Any) -> None:
        ident = self.idents.get(index)
        if ident is None:
            return
        self._send(ue_link.mo_data(ident, data))

    def _send(self, frame: bytes) -> None:
        try:
            self._sock.sendto(frame, self.scef)
            self.sent += 1
        except OSError as e:
            self.send_errors += 1
            log.debug("UE link send: %s", e)

    def _ready(self) -> None:
        recv = self._sock.recvfrom
        for _ in range(_BATCH):
            try:
                data, addr = recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            if (str(addr[0]), int(addr[1])) != self.scef:
                continue  # only the SCEF speaks for the network
            try:
                frame = ue_link.decode(data)
            except ue_link.UeLinkError:
                continue
            index = self.indexes.get(frame.ue)
            if index is None:
                continue
            if frame.kind == ue_link.MT_DATA:
                self.received += 1
                self.receive(index, frame.data, SCS_AS_ADDRESS)
            elif frame.kind == ue_link.ATTACHED:
                self.attached += 1
            elif frame.kind == ue_link.REJECT:
                self.rejects += 1
                if frame.control.get("cause") == "NOT_ATTACHED":
                    self._send(ue_link.attach(frame.ue, (self.link.group,)))
        self.batch_done()

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
