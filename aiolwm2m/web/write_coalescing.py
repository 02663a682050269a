"""One socket write per response instead of two.

uvicorn writes a response's head when the app starts it and its body when the app sends it:
two ``send`` system calls, two TCP segments (the socket has TCP_NODELAY) and two wake-ups of
the client, for nearly every REST response. On a loaded machine that second write was a
sizeable part of a request's cost (``bench/bench_rest.py``, profiled with py-spy).
:class:`CoalescingTransport` stands between uvicorn's protocol and the loop's transport:
what is written during one turn of the event loop goes out in one write at the end of it
(a Starlette response sends head and body in one turn), and at once when it reaches
``FLUSH_BYTES`` (so a streaming response still meets the transport's flow control) or
before the connection is closed or half-closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

#: Written at once beyond this many buffered bytes.
FLUSH_BYTES = 64 * 1024


class CoalescingTransport:
    """Wraps ``transport``: writes are gathered; everything else is the transport's."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        pending = self._pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = []
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, resume_reading, can_write_eof...
        return getattr(self._transport, name)
