"""The Resource Directory under abuse: floods of registrations from one address, oversized
links and patches, piles of lookup observers, simple registrations that never complete.
Every bound holds, each refusal is counted, and the RD keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.rd.config import RdLimits
from aiolwm2m.server import LwM2MServer
from aiolwm2m.transport.site import RenderResult, Resource, Site
from tests.fake_clock import FakeClock
from tests.rd.conftest import Node, location, new_node, rd_config

LIMITS = RdLimits(max_links=10, max_registration_bytes=400, max_registrations=20,
                  max_registrations_per_address=5, max_lookup_observers=6,
                  max_lookup_observers_per_address=2, simple_registration_fetches=2,
                  simple_registration_timeout=1.0)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(rd_config(tmp_path, FakeClock(), rd_limits=LIMITS))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def node(server: LwM2MServer) -> AsyncIterator[Node]:
    n = await new_node(server)
    yield n
    await n.close()


async def test_registrations_per_unauthenticated_address(server: LwM2MServer,
                                                         node: Node) -> None:
    locations = [location(await node.ask(Code.POST, "rd", f"ep=n{i}", "d=flood",
                                         payload=b"</a>", cf=40)) for i in range(5)]
    for i in range(5, 40):
        resp = await node.ask(Code.POST, "rd", f"ep=n{i}", "d=flood", payload=b"</a>", cf=40)
        assert (resp.code, resp.payload) == (Code.TOO_MANY_REQUESTS,
                                             b"too many registrations from this address")
    assert len(server.rd.directory) == 5  # type: ignore[union-attr]
    assert server.refusals.by_reason["rd-address-limit"] == 35
    # Registering an existing (ep, d) again is no new registration, nor is an update.
    again = await node.ask(Code.POST, "rd", "ep=n0", "d=flood", payload=b"</b>", cf=40)
    assert location(again) == locations[0]
    assert (await node.ask(Code.POST, locations[1], "lt=10")).code == Code.CHANGED
    # A removal makes room.
    assert (await node.ask(Code.DELETE, locations[2])).code == Code.DELETED
    location(await node.ask(Code.POST, "rd", "ep=late", "d=flood", payload=b"</a>", cf=40))


async def test_directory_is_bounded(tmp_path: Path) -> None:
    srv = LwM2MServer(rd_config(tmp_path, FakeClock(), store="memory", rd_limits=RdLimits(
        max_registrations=3, max_registrations_per_address=0)))
    await srv.start()
    n = await new_node(srv)
    try:
        for i in range(3):
            location(await n.ask(Code.POST, "rd", f"ep=n{i}", "d=x", payload=b"</a>", cf=40))
        full = await n.ask(Code.POST, "rd", "ep=n3", "d=x", payload=b"</a>", cf=40)
        assert (full.code, full.payload) == (Code.SERVICE_UNAVAILABLE, b"directory full")
        assert srv.refusals.by_reason["rd-full"] == 1
        # LwM2M registration is not held up by a full directory.
        lw = await n.ask(Code.POST, "rd", "ep=dev", "lwm2m=1.1", payload=b"</3/0>", cf=40)
        assert lw.code == Code.CREATED
    finally:
        await n.close()
        await srv.stop()


async def test_links_and_bytes_per_registration(server: LwM2MServer, node: Node) -> None:
    eleven = ",".join(f"</{i}a>" for i in range(11)).encode()
    resp = await node.ask(Code.POST, "rd", "ep=big", "d=x", payload=eleven, cf=40)
    assert (resp.code, resp.payload) == (Code.REQUEST_ENTITY_TOO_LARGE, b"more than 10 links")
    long = b'</a>;title="' + b"x" * 400 + b'"'
    resp = await node.ask(Code.POST, "rd", "ep=big", "d=x", payload=long, cf=40)
    assert resp.code == Code.REQUEST_ENTITY_TOO_LARGE
    loc = location(await node.ask(Code.POST, "rd", "ep=ok", "d=x",
                                  payload=b"</1>,</2>,</3>", cf=40))
    before = server.rd.get(loc[3:])  # type: ignore[union-attr]
    # A patch that would grow it past the bounds: 4.13, and nothing changes.
    grow = json.dumps({"add": ",".join(f"</x{i}>" for i in range(8))}).encode()
    resp = await node.ask(Code.PATCH, loc, payload=grow, cf=50)
    assert resp.code == Code.REQUEST_ENTITY_TOO_LARGE
    fat = json.dumps({"update": {"/1": {"title": "y" * 380}}}).encode()
    resp = await node.ask(Code.PATCH, loc, payload=fat, cf=50)
    assert resp.code == Code.REQUEST_ENTITY_TOO_LARGE
    assert server.rd.get(loc[3:]) is before  # type: ignore[union-attr]
    assert server.refusals.by_reason["rd-too-many-links"] >= 2


async def test_lookup_observers_are_bounded(server: LwM2MServer) -> None:
    """Per address and per transport; a lookup beyond them is answered, without Observe."""
    nodes = [await new_node(server) for _ in range(2)]
    try:
        answers = []
        for n in nodes:  # same IP address (loopback): 2 observers allowed in all
            for i in range(2):
                req = Message.request(Code.GET, "rd-lookup/ep", query=[f"ep=q{i}"], observe=0)
                answers.append(await n.endpoint.request(req, n.rd, timeout=10))
        assert [a.code for a in answers] == [Code.CONTENT] * 4
        assert [a.observe is not None for a in answers] == [True, True, False, False]
        # Asking again for an observed lookup replaces that observer: still admitted.
        req = Message.request(Code.GET, "rd-lookup/ep", query=["ep=q0"], observe=0)
        again = await nodes[0].endpoint.request(req, nodes[0].rd, timeout=10)
        assert again.observe is not None
    finally:
        for n in nodes:
            await n.close()


class Silent(Resource):
    """A /.well-known/core that never answers (the RD's fetch times out)."""

    async def render_get(self, request: Message) -> RenderResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_simple_registration_fetches_are_bounded(server: LwM2MServer) -> None:
    site = Site(well_known_core=False)
    site.add(".well-known/core", Silent())
    slow = await new_node(server, site)
    other = await new_node(server)  # another port of the same address
    try:
        first = asyncio.ensure_future(slow.ask(Code.POST, ".well-known/rd", "ep=slow"))
        await asyncio.sleep(0.3)
        # The same source address while its fetch runs: 5.03 with Max-Age, at once.
        busy = await other.ask(Code.POST, ".well-known/rd", "ep=other")
        assert busy.code == Code.SERVICE_UNAVAILABLE and busy.max_age is not None
        answer = await asyncio.wait_for(first, 10)
        assert (answer.code, answer.payload) == (Code.GATEWAY_TIMEOUT,
                                                 b"could not fetch /.well-known/core")
        assert server.refusals.by_reason["rd-simple-busy"] == 1
        assert server.refusals.by_reason["rd-simple-fetch-failed"] == 1
        assert len(server.rd.directory) == 0  # type: ignore[union-attr]
        assert not any(server.rd._fetching.values())  # type: ignore[union-attr]
    finally:
        await slow.close()
        await other.close()


async def test_error_replies_stay_small(server: LwM2MServer, node: Node) -> None:
    """Whatever a NoSec peer sends, a refusal is a short fixed diagnostic."""
    loc = location(await node.ask(Code.POST, "rd", "ep=s", "d=x", payload=b"</a>", cf=40))
    hrefs = json.dumps({"remove": ["/" + "z" * 300]}).encode()
    for resp in (await node.ask(Code.PATCH, loc, payload=hrefs, cf=50),
                 await node.ask(Code.POST, "rd", "ep=" + "e" * 250, "d=x", payload=b"</a>",
                                cf=40),
                 await node.ask(Code.GET, "rd-lookup/res", "x" * 250 + "=1", "page=9")):
        assert resp.code in (Code.BAD_REQUEST, Code.REQUEST_ENTITY_TOO_LARGE)
        assert len(resp.payload) <= 80
        assert b"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" not in resp.payload


async def test_lookups_that_would_scan_everything_are_refused(tmp_path: Path) -> None:
    """CPU per lookup is bounded: one that would look at more registrations than
    max_lookup_scan (filters on attributes no index holds) is refused with what to add."""
    srv = LwM2MServer(rd_config(tmp_path, FakeClock(), store="memory", rd_limits=RdLimits(
        max_lookup_scan=10, max_registrations_per_address=0)))
    await srv.start()
    n = await new_node(srv)
    try:
        for i in range(30):
            location(await n.ask(Code.POST, "rd", f"ep=n{i:02d}", "d=x", f"site=s{i}",
                                 payload=b'</a>;rt="t"', cf=40))
        scan = await n.ask(Code.GET, "rd-lookup/ep", "site=s29")
        assert (scan.code, scan.payload) == (
            Code.BAD_REQUEST, b"lookup examines over 10 registrations: add ep, d, et, rt or if")
        assert srv.refusals.by_reason["rd-lookup-too-broad"] == 1
        # Indexed: looks only at what it finds; unfiltered: stops at a full page.
        found = await n.ask(Code.GET, "rd-lookup/ep", "site=s29", "ep=n29")
        assert found.code == Code.CONTENT and b'ep="n29"' in found.payload
        page = await n.ask(Code.GET, "rd-lookup/res", "count=5")
        assert page.code == Code.CONTENT and page.payload.count(b"<coap://") == 5
        bad = await n.ask(Code.GET, "rd-lookup/ep", "count=0")
        assert bad.code == Code.BAD_REQUEST
        assert srv.refusals.by_reason["rd-bad-request"] == 1
    finally:
        await n.close()
        await srv.stop()
