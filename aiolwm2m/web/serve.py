"""Serving the ASGI app with Hypercorn (HTTP/1.1 and HTTP/2) inside the server's loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from fastapi import FastAPI
from hypercorn.asyncio import serve
from hypercorn.config import Config


class WebServer:
    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        """Bind now (so a busy port fails here, not later) and serve in the background."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = Config()
        # Hypercorn takes ownership of the descriptor it is given; hand it a duplicate so
        # that this object can close its own socket regardless.
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1.0
        self._task = asyncio.create_task(
            serve(self.app, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
        if self._sock is not None:
            self._sock.close()
