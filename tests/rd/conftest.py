from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint
from tests.fake_clock import FakeClock

HOST = "127.0.0.1"


class Text(Resource):
    def __init__(self, text: str, rt: str | None = None) -> None:
        super().__init__()
        self.text = text
        if rt is not None:
            self.link_params = (("rt", rt),)

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, self.text.encode(), 0)


@dataclass
class Node:
    """A plain CoAP node (our UDP endpoint) that talks to the RD."""

    endpoint: UdpEndpoint
    rd: tuple[str, int]

    async def ask(self, code: int, path: str, *query: str, payload: bytes = b"",
                  cf: int | None = None, **options: Any) -> Message:
        msg = Message.request(code, path, query=list(query), payload=payload,
                              content_format=cf)
        for name, value in options.items():
            setattr(msg, name, value)
        return await self.endpoint.request(msg, self.rd, timeout=10)

    async def close(self) -> None:
        await self.endpoint.close()


async def new_node(server: LwM2MServer, site: Site | None = None) -> Node:
    ep = await UdpEndpoint.create(HOST, 0, site=site or Site())
    return Node(ep, (HOST, server.port))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def rd_config(tmp_path: Path, clock: FakeClock, **kw: Any) -> ServerConfig:
    base: dict[str, Any] = dict(host=HOST, port=0, data_dir=tmp_path, clock=clock,
                                run_timers=False)
    base.update(kw)
    return ServerConfig(**base)


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(rd_config(tmp_path, clock))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def node(server: LwM2MServer) -> AsyncIterator[Node]:
    n = await new_node(server)
    yield n
    await n.close()


def location(response: Message) -> str:
    assert response.code == Code.CREATED, response.payload
    return "/".join(response.location_path)
