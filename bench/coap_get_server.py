"""The aiolwm2m side of the CoAP GET benchmark: a UDP endpoint serving one small resource."""

from __future__ import annotations

import asyncio
import sys

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint


class Hello(Resource):
    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, b"hello", 0)


async def run(port: int) -> None:
    site = Site()
    site.add("hello", Hello())
    endpoint = await UdpEndpoint.create("127.0.0.1", port, site=site)
    print(f"ready {endpoint.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
