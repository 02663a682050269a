"""One UDP socket per device, all behind one event-loop reader.

For servers that are not on IPv4 loopback (where :mod:`.shared_sockets` is used): every
device needs a local address of its own, so each gets a socket on an ephemeral port. The
sockets are registered with an epoll instance of their own and only the epoll descriptor is
watched by the asyncio loop, so N sockets cost one loop reader and one dict entry each
(descriptor -> device index), but N file descriptors (see :mod:`.limits`).
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Receiver = Callable[[int, bytes, Any], None]
_EVENTS_PER_POLL = 4096
_DATAGRAMS_PER_SOCKET = 64


class PerDeviceSockets:
    def __init__(self, receive: Receiver, batch_done: Callable[[], None], host: str) -> None:
        self.host = host
        self.receive = receive
        self.batch_done = batch_done
        self.sockets: dict[int, socket.socket] = {}
        self._index_of_fd: dict[int, int] = {}
        self._epoll = select.epoll()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._epoll.fileno(), self._ready)
        self.send_errors = 0
        self.received = 0
        self.sent = 0

    def __len__(self) -> int:
        return len(self.sockets)

    def open(self, index: int) -> tuple[Any, ...]:
        """A socket for device ``index`` (ephemeral port); returns its address."""
        host = self.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        fd = sock.fileno()
        self.sockets[index] = sock
        self._index_of_fd[fd] = index
        self._epoll.register(fd, select.EPOLLIN)
        return tuple(sock.getsockname())

    def close_socket(self, index: int) -> None:
        sock = self.sockets.pop(index, None)
        if sock is not None:
            fd = sock.fileno()
            self._index_of_fd.pop(fd, None)
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass
            sock.close()

    def sendto(self, index: int, data: bytes, address: Any) -> None:
        sock = self.sockets.get(index)
        if sock is None:
            return
        try:
            sock.sendto(data, address)
            self.sent += 1
        except OSError as e:
            # A full send buffer or an ICMP error of an earlier datagram: CoAP retransmits.
            self.send_errors += 1
            log.debug("device %d sendto %s: %s", index, address, e)

    def _ready(self) -> None:
        try:
            events = self._epoll.poll(0, _EVENTS_PER_POLL)
        except OSError:
            return
        index_of = self._index_of_fd
        sockets = self.sockets
        receive = self.receive
        for fd, _ in events:
            index = index_of.get(fd)
            if index is None:
                continue
            recv = sockets[index].recvfrom
            for _ in range(_DATAGRAMS_PER_SOCKET):
                try:
                    data, addr = recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue
                self.received += 1
                receive(index, data, addr)
        self.batch_done()

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        for index in list(self.sockets):
            self.close_socket(index)
        self._epoll.close()
