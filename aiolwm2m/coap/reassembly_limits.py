"""How much memory Block1 reassembly (RFC 7959 section 2.5) may hold, in bytes.

Every block of an upload waits in memory until the last one arrives, and anyone who can send
a datagram can start an upload. So the buffers are budgeted per transport endpoint and per
peer, with a lower per-peer budget for peers the endpoint does not trust (on the LwM2M
server: neither registered nor DTLS-authenticated), and under pressure the least recently
active untrusted uploads are given up first so that trusted ones survive.

The defaults:

- ``peer_bytes`` 1 MiB: the largest request body a trusted peer may upload, the same limit
  a body had before budgets (a SenML Send or a Write answer of a large device).
- ``untrusted_peer_bytes`` 256 KiB: the one large request an unregistered device has to
  send is its Register, and 256 KiB is the largest object list the registration interface
  takes (``registration_params.MAX_PAYLOAD``; some 10,000 object instances at 10-25 bytes
  each in link format, a large gateway), so no Register it would accept is cut short here.
- ``transport_bytes`` 16 MiB: sixteen trusted peers uploading 1 MiB at once, or 64
  unregistered gateways registering at once; whatever a flood of uploads does, reassembly
  of one endpoint holds no more than this.
- ``peer_transfers`` 8: uploads in progress per peer (to different resources); a peer's
  ninth upload replaces its least recently active one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReassemblyLimits:
    transport_bytes: int = 16 << 20
    peer_bytes: int = 1 << 20
    untrusted_peer_bytes: int = 256 << 10
    peer_transfers: int = 8

    def __post_init__(self) -> None:
        if min(self.transport_bytes, self.peer_bytes, self.untrusted_peer_bytes) < 1024:
            raise ValueError("reassembly budgets must be at least 1024 bytes (one block)")
        if self.peer_transfers < 1:
            raise ValueError("peer_transfers must be at least 1")

    def peer_limit(self, trusted: bool) -> int:
        return self.peer_bytes if trusted else self.untrusted_peer_bytes


DEFAULT_REASSEMBLY_LIMITS = ReassemblyLimits()
