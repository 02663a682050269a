"""``aiolwm2m coap serve``: a CoAP server with a small demo resource tree."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import BadRequest
from aiolwm2m.coap.message import Message
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint


class TextResource(Resource):
    link_params = (("rt", "demo.text"), ("ct", "0"))

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, self.text.encode(), 0)


class ClockResource(Resource):
    """The current time, observable: a notification every second."""

    observable = True
    link_params = (("rt", "demo.clock"), ("ct", "0"))

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime()).encode(), 0)


class CounterResource(Resource):
    observable = True
    link_params = (("rt", "demo.counter"), ("ct", "0"))

    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, str(self.value).encode(), 0)

    def render_post(self, request: Message) -> RenderResult:
        self.value += 1
        self.notify()
        return request.response(Code.CHANGED, str(self.value).encode(), 0)

    def render_put(self, request: Message) -> RenderResult:
        try:
            self.value = int(request.payload.decode() or "0")
        except ValueError:
            raise BadRequest("counter takes a decimal integer") from None
        self.notify()
        return request.response(Code.CHANGED)


class StoreResource(Resource):
    """Holds whatever is PUT or POSTed (block-wise for large bodies) and returns it."""

    observable = True
    link_params = (("rt", "demo.store"),)

    def __init__(self, data: bytes = b"", content_format: int | None = 42) -> None:
        super().__init__()
        self.data = data
        self.content_format = content_format

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, self.data, self.content_format)

    def render_put(self, request: Message) -> RenderResult:
        self.data = request.payload
        self.content_format = request.content_format
        self.notify()
        return request.response(Code.CHANGED)

    render_post = render_put

    def render_delete(self, request: Message) -> RenderResult:
        self.data = b""
        self.notify()
        return request.response(Code.DELETED)


def demo_site() -> tuple[Site, ClockResource]:
    site = Site()
    site.add("hello", TextResource("Hello from aiolwm2m"))
    clock = ClockResource()
    site.add("time", clock)
    site.add("counter", CounterResource())
    site.add("store", StoreResource())
    large = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    site.add("large", StoreResource(large))
    return site, clock


async def serve(host: str, port: int, tick: float = 1.0) -> None:
    site, clock = demo_site()
    endpoint = await UdpEndpoint.create(host, port, site=site)
    print(f"CoAP demo server on udp {host} port {endpoint.port}: try "
          f"'aiolwm2m coap get coap://[::1]:{endpoint.port}/.well-known/core'", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
            clock.notify()
    finally:
        await endpoint.close()


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("serve", help="run a CoAP server with a demo resource tree")
    p.add_argument("--host", default="::", help="address to bind (default :: = all)")
    p.add_argument("--port", type=int, default=5683)
    p.set_defaults(handler=run_server)


def run_server(args: argparse.Namespace) -> int:
    try:
        asyncio.run(serve(args.host, args.port))
    except OSError as e:
        print(f"aiolwm2m coap serve: cannot listen on {args.host} port {args.port}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 1
    return 0
