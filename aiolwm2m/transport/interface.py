"""The one interface every CoAP transport presents to the LwM2M layer.

UDP, DTLS, TCP and TLS endpoints all implement it, so the server, the bootstrap server and
the client send requests, hold observations and learn peer identities the same way whatever
carries the messages.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiolwm2m.coap.message import Message
from aiolwm2m.coap.messaging import Exchange

Address = tuple[Any, ...]


class Endpoint(Protocol):
    @property
    def port(self) -> int: ...

    def new_token(self) -> bytes: ...

    def identity_of(self, remote: Address) -> str | None: ...

    async def request(self, request: Message, remote: Address, *,
                      timeout: float | None = None, block_szx: int = 6) -> Message: ...

    async def observe_with(self, request: Message, remote: Address, sink: Any) -> Exchange: ...

    async def resume_observation(self, request: Message, remote: Address, sink: Any
                                 ) -> Exchange: ...

    def forget(self, exchange: Exchange) -> None: ...

    async def complete_blocks(self, request: Message, first: Message, remote: Address,
                              timeout: float | None = None) -> Message: ...

    async def close(self) -> None: ...
