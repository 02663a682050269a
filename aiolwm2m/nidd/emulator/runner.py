"""The SCEF emulator as one object: its T8 HTTP server (Starlette on hypercorn) and its UE
socket (UDP), started and stopped together.

::

    async with ScefEmulator(port=8800) as scef:
        ...   # T8 at scef.url + "/3gpp-nidd/v1/...", UEs attach to scef.ue_address
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .app import EmulatorApp
from .notifier import CallbackNotifier
from .scef import Scef, ScefLimits
from .ues import UeBehaviour

log = logging.getLogger(__name__)
#: Largest UE datagram (a CoAP message in a packet the emulator would refuse anyway).
MAX_DATAGRAM = 65535


class _UeProtocol(asyncio.DatagramProtocol):
    def __init__(self, scef: Scef) -> None:
        self.scef = scef

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.scef.on_frame(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UE socket: %s", exc)


class ScefEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, ue_port: int | None = None,
                 token: str | None = None, limits: ScefLimits | None = None,
                 behaviour: UeBehaviour | None = None) -> None:
        self.host = host
        self.port = port
        #: The UE socket's UDP port: the HTTP port's number unless given (0: any).
        self.ue_port = ue_port
        self.token = token
        self.limits = limits
        self.behaviour = behaviour
        self._stop = asyncio.Event()
        self._serving: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._ue_transport: asyncio.DatagramTransport | None = None
        self.notifier: CallbackNotifier | None = None
        self.scef: Scef | None = None
        self.ue_address: tuple[str, int] = ("", 0)

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        loop = asyncio.get_running_loop()
        requested = self.port
        # With port 0 the system picks the HTTP port, and that number's UDP port (the UE
        # socket's) may be taken by someone else: then another HTTP port is tried.
        attempts = 20 if requested == 0 and self.ue_port is None else 1
        self.notifier = CallbackNotifier()
        self.scef = Scef(self._send_frame, self.notifier.send, limits=self.limits,
                         default_behaviour=self.behaviour)
        for attempt in range(attempts):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, requested))
                sock.listen(512)
                sock.setblocking(False)
            except OSError:
                sock.close()
                await self.notifier.close()
                raise
            port = sock.getsockname()[1]
            ue_port = port if self.ue_port is None else self.ue_port
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UeProtocol(self.scef),  # type: ignore[arg-type]
                    local_addr=(self.host, ue_port), family=family)
            except OSError:
                sock.close()
                if attempt + 1 < attempts:
                    continue
                await self.notifier.close()
                raise
            break
        self._sock = sock
        self.port = port
        self._ue_transport = transport
        self.ue_address = transport.get_extra_info("sockname")[:2]
        app = EmulatorApp(self.scef, token=self.token,
                          ue_link=lambda: {"host": self.ue_address[0],
                                           "port": self.ue_address[1]})
        config = Config()
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        self._serving = asyncio.create_task(
            serve(app.app, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]

    def _send_frame(self, data: bytes, address: Any) -> None:
        if self._ue_transport is not None and address is not None:
            self._ue_transport.sendto(data, address)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self._stop.set()
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._serving, 5)
        if self._ue_transport is not None:
            self._ue_transport.close()
        if self.notifier is not None:
            await self.notifier.close()
        if self._sock is not None:
            self._sock.close()
        if self.scef is not None:
            for record in list(self.scef.configurations.values()):
                if record.timer is not None:
                    record.timer.cancel()
            for delivery in self.scef.deliveries.values():
                if delivery.timer is not None:
                    delivery.timer.cancel()

    async def __aenter__(self) -> ScefEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
