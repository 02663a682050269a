"""Where a stream listener (``asyncio.Server``) is bound, for the endpoints built on one."""

from __future__ import annotations

import asyncio
from typing import Any


def listening_address(server: asyncio.AbstractServer | None) -> tuple[Any, ...]:
    """The first listening socket's address, ``()`` before it listens or after it closed."""
    sockets = getattr(server, "sockets", None)
    if not sockets:
        return ()
    return tuple(sockets[0].getsockname())
