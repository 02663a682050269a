"""A real server-sent-events client for the tests (httpx streaming, one connection each)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx


class SseReader:
    """Reads ``/api/events`` on a connection of its own. With ``small_buffer`` a client that
    stops reading makes the server's writes block sooner (128 KiB: below the loopback MSS
    the sender would fall back to zero-window probes that back off for seconds)."""

    def __init__(self, url: str, token: str, small_buffer: bool = False,
                 shared: httpx.AsyncClient | None = None) -> None:
        self.shared = shared
        if shared is not None:  # clients are slow to make (an SSL context each)
            self.http = shared
        else:
            transport = httpx.AsyncHTTPTransport(socket_options=[
                (socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)] if small_buffer else [])
            self.http = httpx.AsyncClient(base_url=url, timeout=30, transport=transport,
                                          headers={"Authorization": f"Bearer {token}"})
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.comments: list[str] = []
        self._stack = contextlib.AsyncExitStack()
        self._lines: AsyncIterator[str] | None = None

    async def open(self, params: dict[str, str] | None = None) -> None:
        response = await self._stack.enter_async_context(
            self.http.stream("GET", "/api/events", params=params))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.aiter_lines()
        assert await anext(self._lines) == ": aiolwm2m events"

    async def read_until(self, done: Callable[[SseReader], bool]) -> None:
        """Read until ``done(self)`` after an event or comment, or the end of the stream."""
        assert self._lines is not None
        name = ""
        async for line in self._lines:
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                self.events.append((name, json.loads(line[6:])))
                if done(self):
                    return
            elif line.startswith(":"):
                self.comments.append(line)
                if done(self):
                    return

    async def close(self) -> None:
        await self._stack.aclose()
        if self.shared is None:
            await self.http.aclose()


def shared_client(url: str, token: str, connections: int) -> httpx.AsyncClient:
    """One client (one connection pool) for many readers."""
    return httpx.AsyncClient(base_url=url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"},
                             limits=httpx.Limits(max_connections=connections))
