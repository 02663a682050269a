"""The aiolwm2m side of the CoAP-over-TCP benchmark: a TcpEndpoint serving one small resource.

    python bench/coap_tcp_get_server.py [PORT]

Prints ``ready PORT`` once listening. Reused by the memory measurement, which opens idle
connections against it and reads its RSS.
"""

from __future__ import annotations

import asyncio
import sys

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint


class Hello(Resource):
    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, b"hello", 0)


async def run(port: int) -> None:
    site = Site()
    site.add("hello", Hello())
    endpoint = await TcpEndpoint.create("127.0.0.1", port, site=site, backlog=4096)
    print(f"ready {endpoint.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
