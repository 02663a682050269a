"""The client's datagram endpoints: the shared UdpEndpoint (coap://) and DtlsEndpoint
(coaps://) with three additions a device needs.

* traffic counters (bytes and datagrams each way) for Connectivity Statistics (object 7);
* a radio switch for queue mode: while asleep, arriving datagrams are read and dropped, as a
  device whose radio is off never sees them;
* per-peer muting for a disabled server account, whose messages the TS says to ignore.
"""

from __future__ import annotations

import socket
from collections.abc import Hashable
from typing import Any

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import MessageLayer
from aiolwm2m.transport.dtls import DtlsEndpoint
from aiolwm2m.transport.udp import UdpEndpoint


class CountingSocket(socket.socket):
    """A UDP socket that counts what goes through it."""

    def __init__(self, family: int) -> None:
        super().__init__(family, socket.SOCK_DGRAM)
        self.tx_bytes = self.rx_bytes = self.tx_count = self.rx_count = 0

    def sendto(self, data: Any, *args: Any) -> int:
        sent: int = super().sendto(data, *args)
        self.tx_bytes += sent
        self.tx_count += 1
        return sent

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        data, addr = super().recvfrom(bufsize, flags)
        self.rx_bytes += len(data)
        self.rx_count += 1
        return data, addr


def peer_key(address: Any) -> tuple[str, int]:
    """Host and port of a socket address, whatever its family's tuple length."""
    return str(address[0]), int(address[1])


class GatedMessageLayer(MessageLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asleep = False
        self.muted: set[tuple[str, int]] = set()
        self.dropped = 0

    def receive(self, data: bytes, peer: Hashable, now: float) -> Message | None:
        if self.asleep or (self.muted and peer_key(peer) in self.muted):
            self.dropped += 1
            return None
        return super().receive(data, peer, now)


def bound_socket(host: str, port: int) -> CountingSocket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = CountingSocket(family)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class GatedEndpoint:
    """What the client's UDP and DTLS endpoints add to the shared ones."""

    gate: GatedMessageLayer
    sock: socket.socket

    def traffic(self) -> tuple[int, int, int, int]:
        s = self.sock
        if isinstance(s, CountingSocket):
            return s.tx_bytes, s.rx_bytes, s.tx_count, s.rx_count
        return 0, 0, 0, 0

    @property
    def asleep(self) -> bool:
        return self.gate.asleep

    @asleep.setter
    def asleep(self, value: bool) -> None:
        self.gate.asleep = value

    def mute(self, address: Any) -> None:
        self.gate.muted.add(peer_key(address))

    def unmute(self, address: Any) -> None:
        self.gate.muted.discard(peer_key(address))


class ClientEndpoint(GatedEndpoint, UdpEndpoint):
    """coap://: one socket shared by every NoSec UDP server (and firmware downloads)."""

    def __init__(self, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(sock, **kwargs)
        self.layer = self.gate = GatedMessageLayer(self.params, now=self.clock())

    @classmethod
    async def open(cls, host: str = "::", port: int = 0, **kwargs: Any) -> ClientEndpoint:
        return cls(bound_socket(host, port), **kwargs)


class ClientDtlsEndpoint(GatedEndpoint, DtlsEndpoint):
    """coaps://: one socket, and one DTLS session, per server account (the client side of
    DTLS only: a server reaches us over the session we opened)."""

    def __init__(self, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(sock, server_credentials=None, **kwargs)
        self.layer = self.gate = GatedMessageLayer(self.params, now=self.clock())

    @classmethod
    async def open(cls, host: str = "::", port: int = 0, **kwargs: Any) -> ClientDtlsEndpoint:
        return cls(bound_socket(host, port), **kwargs)
