"""Devices as distinct loopback addresses behind a few shared sockets (IPv4 loopback).

All of 127.0.0.0/8 is local on Linux, and a UDP socket bound to the wildcard address
receives datagrams for every local address on its port. So device ``i`` is given its own
address ``127.1.0.1 + i``: it sends with that source address (``IP_PKTINFO`` ancillary
data), and the datagrams the server sends back arrive on the shared socket with the device's
address as their destination, which ``IP_PKTINFO`` reports. The server sees N distinct
peers; the simulator needs a handful of descriptors instead of N, and no per-device socket
object.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Receiver = Callable[[int, bytes, Any], None]
#: IP_PKTINFO from <linux/in.h>; Python's socket module does not export it.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
BASE_ADDRESS = int(ipaddress.IPv4Address("127.1.0.1"))
MAX_DEVICES = int(ipaddress.IPv4Address("127.254.255.254")) - BASE_ADDRESS
DEVICES_PER_SOCKET = 25000
_PKTINFO = struct.Struct("=i4s4s")
_ANCILLARY = socket.CMSG_SPACE(_PKTINFO.size)
_DATAGRAMS_PER_WAKEUP = 512
_BUFFER = 1 << 22


def device_address(index: int) -> str:
    return str(ipaddress.IPv4Address(BASE_ADDRESS + index))


class SharedSockets:
    def __init__(self, receive: Receiver, batch_done: Callable[[], None], count: int) -> None:
        if count > MAX_DEVICES:
            raise ValueError(f"at most {MAX_DEVICES} devices fit in 127/8")
        self.receive = receive
        self.batch_done = batch_done
        self.count = count
        self.active = bytearray(count)
        self._loop = asyncio.get_running_loop()
        self._sockets: list[socket.socket] = []
        self._ports: list[int] = []
        for k in range(max(1, -(-count // DEVICES_PER_SOCKET))):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER)
                sock.bind(("0.0.0.0", 0))
                sock.setblocking(False)
            except OSError:
                sock.close()
                self.close()
                raise
            self._sockets.append(sock)
            self._ports.append(sock.getsockname()[1])
            self._loop.add_reader(sock.fileno(), self._ready, k)
        self.send_errors = 0
        self.received = 0
        self.sent = 0

    def __len__(self) -> int:
        return sum(self.active)

    def open(self, index: int) -> tuple[Any, ...]:
        self.active[index] = 1
        return device_address(index), self._ports[index // DEVICES_PER_SOCKET]

    def close_socket(self, index: int) -> None:
        self.active[index] = 0

    def sendto(self, index: int, data: bytes, address: Any) -> None:
        sock = self._sockets[index // DEVICES_PER_SOCKET]
        source = (BASE_ADDRESS + index).to_bytes(4, "big")
        try:
            sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO,
                                   _PKTINFO.pack(0, source, b"\0\0\0\0"))], 0, address)
            self.sent += 1
        except OSError as e:
            self.send_errors += 1
            log.debug("device %d sendmsg %s: %s", index, address, e)

    def _ready(self, k: int) -> None:
        recv = self._sockets[k].recvmsg
        receive = self.receive
        active = self.active
        count = self.count
        first = k * DEVICES_PER_SOCKET
        last = first + DEVICES_PER_SOCKET
        for _ in range(_DATAGRAMS_PER_WAKEUP):
            try:
                data, ancillary, _, addr = recv(2048, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            index = -1
            for level, kind, blob in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                    index = int.from_bytes(blob[8:12], "big") - BASE_ADDRESS
            if not (first <= index < last and index < count and active[index]):
                continue  # not for one of our devices (or one that is not started)
            self.received += 1
            receive(index, data, addr)
        self.batch_done()

    def close(self) -> None:
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
