"""What the standard objects ask of the running client (the asyncio glue implements it).

Executes such as Registration Update Trigger or Disable, and the firmware download, act on
the client rather than on the object tree; the objects reach them through this small
interface so that they stay free of sockets and tasks.
"""

from __future__ import annotations

from typing import Protocol


class ClientControl(Protocol):
    def trigger_update(self, ssid: int) -> None:
        """Send an Update to server ``ssid`` soon (after the current response)."""

    def disable_server(self, ssid: int, seconds: float) -> None:
        """De-register from ``ssid`` and stay away from it for ``seconds``."""

    def trigger_bootstrap(self) -> None:
        """Start a client-initiated bootstrap soon."""

    def wall_time(self) -> float:
        """Seconds since the epoch, as the client's clock sees them."""

    def traffic(self) -> tuple[int, int, int, int]:
        """Bytes sent, bytes received, datagrams sent, datagrams received so far."""

    async def download(self, uri: str, max_size: int) -> bytes:
        """Fetch ``uri`` (CoAP block-wise, or HTTP) and return the body, at most
        ``max_size`` bytes; raises :class:`DownloadError` with the Firmware Update result
        code on failure."""


class DownloadError(Exception):
    def __init__(self, result: int, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason
