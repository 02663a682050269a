"""Parsers against hostile peers on real sockets: a 649 KB Register of 60,000 instances sent
block-wise (it once blocked the event loop for 12 s: membership tests in a list), and numbers
of 4,301 digits (int() refused them with a bare ValueError, answered 5.00 / 500).

Time is asserted as the longest stall of the event loop, with a margin of several times what
the linear parsers need and well below what the quadratic one took, and as the ratio of two
parses measured in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Iterator

import aiocoap
import cbor2
import httpx
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.reassembly_limits import ReassemblyLimits
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.registration_params import parse_register
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer
from tests.server.aiocoap_device import started_device

TOKEN = "bounds-token-0123456789"
HUGE = "9" * 4301  # one digit past what int() converts
INSTANCES = 60_000


def gateway_links(instances: int = INSTANCES) -> bytes:
    links = ['</>;rt="oma.lwm2m";ct="60 110 112 11542"', "</6>"]
    links.extend(f"</6/{iid}>" for iid in range(instances))
    return ",".join(links).encode()


class LoopStalls:
    """The longest time the event loop went without running a 10 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.longest = max(self.longest, loop.time() - before - 0.01)

    @contextlib.contextmanager
    def watching(self) -> Iterator[LoopStalls]:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        try:
            yield self
        finally:
            self._task.cancel()


@pytest.fixture
async def coap() -> AsyncIterator[aiocoap.Context]:
    context = await aiocoap.Context.create_client_context()
    yield context
    await context.shutdown()


async def start(**config: object) -> LwM2MServer:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False,
                                      **config))  # type: ignore[arg-type]
    await server.start()
    return server


def register(server: LwM2MServer, query: str, payload: bytes) -> aiocoap.Message:
    return aiocoap.Message(code=C.POST, uri=f"coap://[::1]:{server.port}/rd?{query}",
                           payload=payload, content_format=40)


def _parse_seconds(instances: int) -> float:
    """The least CPU time of three parses of a gateway list of ``instances`` instances."""
    payload = gateway_links(instances)
    best = float("inf")
    for _ in range(3):
        gc.collect()
        started = time.process_time()
        params = parse_register(["ep=gw", "lwm2m=1.1"], payload, 40,
                                accepted_versions=frozenset({"1.1"}), default_lifetime=60,
                                max_objects=100_000, max_payload=1 << 20)
        best = min(best, time.process_time() - started)
        assert len(params.object_links.objects) == instances + 1
        payload = payload + b" "  # (a new payload: small ones are cached, these are not)
    return best


def test_parsing_the_gateway_list_is_linear() -> None:
    # The parser alone, sans-IO. Ten times the instances should cost about ten times the
    # time (the quadratic parser: a hundred times, 12.4 s for 60,000); measured against
    # each other in the same run, so that the machine's load cancels out.
    assert len(gateway_links()) > 640_000
    small, large = _parse_seconds(INSTANCES // 10), _parse_seconds(INSTANCES)
    assert large < 30 * small + 0.05, (small, large)


# What the server is configured with, and how it answers the 649 KB Register: the transport
# refuses to buffer that much from a peer it does not know; past that, the object list's
# size cap refuses it; with both raised, it is parsed (in linear time) and registered.
BIG_BODIES = ReassemblyLimits(untrusted_peer_bytes=1 << 20)
RAISED_CAPS = {"max_objects_per_registration": 100_000, "max_registration_payload": 1 << 20}


@pytest.mark.parametrize(("config", "expected"), [
    ({}, C.REQUEST_ENTITY_TOO_LARGE),
    ({"reassembly": BIG_BODIES}, C.REQUEST_ENTITY_TOO_LARGE),
    ({"reassembly": BIG_BODIES, **RAISED_CAPS}, C.CREATED),
], ids=["transport-budget", "object-list-cap", "accepted"])
async def test_huge_register_over_block1_keeps_the_server_serving(
        coap: aiocoap.Context, config: dict[str, object], expected: object) -> None:
    server = await start(**config)
    try:
        stalls = LoopStalls()
        answered = 0

        async def ping(done: asyncio.Event) -> None:
            nonlocal answered
            while True:
                small = register(server, f"ep=small-{answered}&lt=60&lwm2m=1.1", b"</3/0>")
                if (await coap.request(small).response).code == C.CREATED:
                    answered += 1
                if done.is_set():
                    return
                await asyncio.sleep(0.02)

        with stalls.watching():
            done = asyncio.Event()
            pinger = asyncio.create_task(ping(done))
            big = register(server, "ep=gateway&lt=60&lwm2m=1.1", gateway_links())
            resp = await asyncio.wait_for(coap.request(big).response, timeout=60)
            done.set()
            await pinger
        assert resp.code == expected, resp.payload
        if expected == C.CREATED:
            assert len(server.registrations["gateway"].objects) == INSTANCES + 1
            assert answered >= 3  # others registered while the 634 blocks went in
        else:
            # Refused briefly, without echoing the list.
            assert len(resp.payload) < 80 and b"</6/" not in resp.payload
            assert "gateway" not in server.registrations
            assert answered >= 1
        assert stalls.longest < 3.0, f"the event loop stalled {stalls.longest:.2f} s"
    finally:
        await server.stop()


async def test_over_the_object_cap(coap: aiocoap.Context) -> None:
    server = await start(max_objects_per_registration=100)
    try:
        resp = await coap.request(register(server, "ep=gw&lt=60", gateway_links(101))).response
        assert resp.code == C.REQUEST_ENTITY_TOO_LARGE
        assert b"more than 100 objects" in resp.payload
        resp = await coap.request(register(server, "ep=gw&lt=60", gateway_links(99))).response
        assert resp.code == C.CREATED
    finally:
        await server.stop()


@pytest.mark.parametrize("payload", [
    f"</{HUGE}/0>".encode(),
    f"</3/{'0' * 5000}1>".encode(),
    f"</3>;ver={HUGE}".encode(),
    f'</>;rt="oma.lwm2m";ct={HUGE},</3/0>'.encode(),
], ids=["object-id", "instance-id", "ver", "ct"])
async def test_huge_numbers_in_register_get_4_00(coap: aiocoap.Context, payload: bytes) -> None:
    # (Query items cannot carry them: CoAP caps a Uri-Query at 255 bytes, 4.02 beyond;
    # test_registration.py checks lt= and friends without the network.)
    server = await start(reassembly=BIG_BODIES)
    try:
        resp = await coap.request(register(server, "ep=d&lt=60&lwm2m=1.1", payload)).response
        assert resp.code == C.BAD_REQUEST, resp.payload
        assert len(resp.payload) < 200  # a short reason, not the input echoed back
        # ...and the server goes on serving: a Register, then a Send with a time of 10**40
        # seconds (which used to reach the events as is).
        ok = await coap.request(register(server, "ep=d&lt=60&lwm2m=1.1", b"</3/0>")).response
        assert ok.code == C.CREATED
        for body, fmt in ((cbor2.dumps([{-3: 10**40, 0: "/3/0/9", 2: 1}]), 112),
                          (f'[{{"n":"/{HUGE}/0/9","v":1}}]'.encode(), 110),
                          (f'[{{"n":"/3/0/9","v":{HUGE}}}]'.encode(), 110)):
            send = aiocoap.Message(code=C.POST, uri=f"coap://[::1]:{server.port}/dp",
                                   payload=body, content_format=fmt)
            resp = await coap.request(send).response
            assert resp.code == C.BAD_REQUEST, resp.payload
            assert len(resp.payload) < 300
    finally:
        await server.stop()


async def test_huge_numbers_in_rest_input_get_400() -> None:
    server = await start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    device = await started_device("d")
    try:
        assert (await device.register(f"coap://[::1]:{server.port}")).code == C.CREATED
        async with httpx.AsyncClient(base_url=web.url, timeout=20,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for path in (f"/{HUGE}", f"/3/{HUGE}/1", f"/3/0/{'0' * 6000}"):
                r = await http.get("/api/clients/d/read", params={"path": path})
                assert r.status_code == 400, r.text
                assert len(r.text) < 400  # the path quoted short
            r = await http.get("/api/clients/d/read", params={"path": "/3/0", "format": HUGE})
            assert r.status_code == 400 and len(r.text) < 400, r.text
            for values in ({HUGE: 1}, {"5700": {HUGE: 1}}):
                r = await http.post("/api/clients/d/create",
                                    json={"path": "/3303", "values": values})
                assert r.status_code == 400, r.text
            r = await http.post("/api/clients/d/write-attributes",
                                json={"path": "/3303/0/5700", "set": {"pmin": 1e300}})
            assert r.status_code == 400, r.text
    finally:
        await device.stop()
        await web.stop()
        await server.stop()
