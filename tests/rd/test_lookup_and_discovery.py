"""Discovery on every transport, lookups over CoAP (with Observe), bad input, --no-rd, and
registrations bound to an authenticated identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity
from tests.fake_clock import FakeClock

from .conftest import HOST, Node, Text, location, new_node, rd_config

KEY = b"0123456789abcdef"
RD_TYPES = {"core.rd", "core.rd-lookup-ep", "core.rd-lookup-res", "core.rd-group"}


@pytest.fixture
async def secure_server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(rd_config(tmp_path, clock, coaps_port=0, tcp_port=0, tls_port=0,
                                store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("sensor-a", psk_identity=b"sensor-a",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


def discovery() -> Message:
    return Message.request(Code.GET, ".well-known/core", query=["rt=core.rd*"])


def rd_types(payload: bytes) -> set[str]:
    return {v for link in parse_link_format(payload) for v in link.values("rt")}


async def test_discovery_on_every_transport(secure_server: LwM2MServer) -> None:
    srv = secure_server
    udp = await new_node(srv)
    dtls = await DtlsEndpoint.create(HOST, 0, site=Site(), server_credentials=None)
    assert isinstance(dtls, DtlsEndpoint)
    tcp = await TcpEndpoint.create(listen=False, site=Site())
    tls = await TcpEndpoint.create(listen=False, site=Site(), tls_client=TlsClientSecurity(
        PskCredentials(b"sensor-a", KEY)))
    try:
        answers = [await udp.endpoint.request(discovery(), udp.rd, timeout=10)]
        remote = await dtls.secure((HOST, srv.port_of("dtls")),
                                   ClientSecurity(PskCredentials(b"sensor-a", KEY)))
        answers.append(await dtls.request(discovery(), remote, timeout=10))
        answers.append(await tcp.request(discovery(), (HOST, srv.port_of("tcp")), timeout=10))
        answers.append(await tls.request(discovery(), (HOST, srv.port_of("tls")), timeout=10))
        for answer in answers:
            assert answer.code == Code.CONTENT and rd_types(answer.payload) == RD_TYPES
        # ?rt= filters exactly.
        only = Message.request(Code.GET, ".well-known/core", query=["rt=core.rd-lookup-res"])
        got = await tcp.request(only, (HOST, srv.port_of("tcp")), timeout=10)
        assert got.payload == b'</rd-lookup/res>;rt="core.rd-lookup-res";ct=40;obs'
        # And the RD works there: a registration over TLS is bound to its identity.
        reg = Message.request(Code.POST, "rd", query=["ep=sensor-a", "d=secure"],
                              payload=b"</t>", content_format=40)
        resp = await tls.request(reg, (HOST, srv.port_of("tls")), timeout=10)
        loc = location(resp)
        assert srv.rd.get(loc[3:]).identity == "psk:sensor-a"  # type: ignore[union-attr]
        # Knowing the location is not enough to change it without that identity: 4.03
        # (first come, first remembered; CRD-004).
        stranger = await udp.ask(Code.DELETE, loc)
        assert (stranger.code, stranger.payload) == (Code.FORBIDDEN, b"forbidden")
        assert srv.refusals.by_reason["rd-wrong-identity"] == 1
        again = Message.request(Code.POST, "rd", query=["ep=sensor-a", "d=secure"],
                                payload=b"</x>", content_format=40)
        assert (await udp.endpoint.request(again, udp.rd, timeout=10)).code == Code.FORBIDDEN
        delete = Message.request(Code.DELETE, loc)
        assert (await tls.request(delete, (HOST, srv.port_of("tls")), timeout=10)).code == (
            Code.DELETED)
    finally:
        for ep in (tcp, tls, dtls):
            await ep.close()
        await udp.close()


async def test_lookup_over_coap(server: LwM2MServer, node: Node) -> None:
    for i in range(12):
        resp = await node.ask(Code.POST, "rd", f"ep=meter-{i:02d}",
                              f"d=plant-{i % 2}", "et=meter",
                              payload=f'</v>;rt="power";ct=0,</c{i}>;rt="cfg"'.encode(),
                              cf=40)
        location(resp)
    lw = await node.ask(Code.POST, "rd", "ep=dev-1", "lwm2m=1.1", payload=b"</3/0>", cf=40)
    assert lw.code == Code.CREATED

    async def eps(*query: str) -> list[str]:
        got = await node.ask(Code.GET, "rd-lookup/ep", *query)
        assert got.code == Code.CONTENT and got.content_format == 40, got.payload
        return [link.get("ep") or "" for link in parse_link_format(got.payload)]

    assert await eps("ep=meter-0*", "d=plant-1") == ["meter-01", "meter-03", "meter-05",
                                                      "meter-07", "meter-09"]
    assert await eps("et=meter", "page=2", "count=5") == ["meter-10", "meter-11"]
    assert await eps("et=oma.lwm2m") == ["dev-1"]
    assert await eps("rt=cfg", "href=/c3") == ["meter-03"]
    assert len(await eps()) == 13
    res = await node.ask(Code.GET, "rd-lookup/res", "rt=power", "d=plant-0", "count=2")
    base = f"coap://127.0.0.1:{node.endpoint.port}"
    assert res.payload == f'<{base}/v>;rt="power";ct=0,<{base}/v>;rt="power";ct=0'.encode()
    res = await node.ask(Code.GET, "rd-lookup/res", "ep=dev-1")
    assert res.payload == f"<{base}/3/0>".encode()
    wrong = Message.request(Code.GET, "rd-lookup/ep", accept=50)
    assert (await node.endpoint.request(wrong, node.rd, timeout=10)).code == (
        Code.NOT_ACCEPTABLE)


async def test_observed_lookup_notifies_when_its_answer_changes(server: LwM2MServer,
                                                                node: Node) -> None:
    request = Message.request(Code.GET, "rd-lookup/ep", query=["et=meter"], observe=0)
    sub = await node.endpoint.observe(request, node.rd)
    first = await sub.first
    assert first.code == Code.CONTENT and first.observe is not None and first.payload == b""
    other = await new_node(server)
    try:
        # Not in the answer: no notification.
        location(await other.ask(Code.POST, "rd", "ep=x", "et=valve", payload=b"</a>", cf=40))
        await asyncio.sleep(0.5)
        assert sub._queue.empty()
        # In the answer: one.
        loc = location(await other.ask(Code.POST, "rd", "ep=m1", "et=meter", payload=b"</a>",
                                       cf=40))
        note = await asyncio.wait_for(sub.__anext__(), 5)
        assert [link.get("ep") for link in parse_link_format(note.payload)] == ["m1"]
        # A lifetime refresh changes nothing in the answer: no notification; a delete does.
        assert (await other.ask(Code.POST, loc, "lt=500")).code == Code.CHANGED
        await asyncio.sleep(0.5)  # several notification passes (they run 0.1 s after a change)
        assert sub._queue.empty()
        assert (await other.ask(Code.DELETE, loc)).code == Code.DELETED
        note = await asyncio.wait_for(sub.__anext__(), 5)
        assert note.payload == b""
        # LwM2M registrations count too (et=oma.lwm2m).
        lw_request = Message.request(Code.GET, "rd-lookup/ep", query=["et=oma.lwm2m"],
                                     observe=0)
        lw_sub = await other.endpoint.observe(lw_request, other.rd)
        assert (await lw_sub.first).payload == b""
        resp = await node.ask(Code.POST, "rd", "ep=dev-9", "lwm2m=1.1", payload=b"</3/0>",
                              cf=40)
        assert resp.code == Code.CREATED
        note = await asyncio.wait_for(lw_sub.__anext__(), 5)
        assert b'ep="dev-9"' in note.payload
        await lw_sub.cancel()
        assert sub._queue.empty()  # et=meter heard nothing of dev-9
    finally:
        await sub.cancel()
        await other.close()


BAD = [
    # (method, path, query, payload, content format, words in the diagnostic)
    (Code.POST, "rd", ["ep=" + "n" * 64, "d=x"], b"</a>", 40, b"ep longer than 63"),
    (Code.POST, "rd", ["ep=n", "d=" + "d" * 64], b"</a>", 40, b"d longer than 63"),
    (Code.POST, "rd", ["ep=n", "d=x", "lt=0"], b"</a>", 40, b"lt="),
    (Code.POST, "rd", ["ep=n", "d=x", "lt=4294967296"], b"</a>", 40, b"lt="),
    (Code.POST, "rd", ["ep=n", "d=x"], b"</a;rt=", 40, b"malformed link format"),
    (Code.POST, "rd", ["d=x"], b"</a>", 40, b"missing endpoint"),
    (Code.GET, "rd-lookup/ep", ["page=1"], b"", None, b"page needs count"),
    (Code.GET, "rd-lookup/ep", ["count=0"], b"", None, b"count="),
    (Code.GET, "rd-lookup/res", ["count=99999999999999999999"], b"", None, b"count="),
    (Code.GET, "rd-lookup/res", ["=oops"], b"", None, b"no attribute name"),
    (Code.GET, "rd-lookup/ep", ["page=x", "count=1"], b"", None, b"page="),
]


async def test_bad_input_gets_400_and_nothing_changes(server: LwM2MServer, node: Node) -> None:
    loc = location(await node.ask(Code.POST, "rd", "ep=keep", "d=x", payload=b"</a>,</b>",
                                  cf=40))
    before = server.rd.get(loc[3:])  # type: ignore[union-attr]
    for method, path, query, payload, cf, words in BAD:
        resp = await node.ask(method, path, *query, payload=payload, cf=cf)
        assert resp.code == Code.BAD_REQUEST, (path, query)
        assert words in resp.payload, (resp.payload, words)
        assert len(resp.payload) <= 80
    for query, payload, cf in ((["lt=0"], b"</c>", 40), (["ep=other"], b"", None),
                               (["lt=5"], b"</c", 40)):
        resp = await node.ask(Code.POST, loc, *query, payload=payload, cf=cf)
        assert resp.code == Code.BAD_REQUEST
    bad_patch = await node.ask(Code.PATCH, loc, payload=b'{"remove": ["/a", "/zz"]}', cf=50)
    assert bad_patch.code == Code.BAD_REQUEST and b"/zz" in bad_patch.payload
    assert server.rd.get(loc[3:]) is before  # nothing half-applied
    assert len(server.rd.directory) == 1  # type: ignore[union-attr]
    # And it keeps serving.
    assert (await node.ask(Code.GET, "rd-lookup/ep", "ep=keep")).code == Code.CONTENT
    assert server.refusals.by_reason["rd-bad-request"] >= 9


async def test_no_rd(tmp_path: Path, clock: FakeClock) -> None:
    srv = LwM2MServer(rd_config(tmp_path, clock, rd=False, store="memory"))
    await srv.start()
    n = await new_node(srv)
    try:
        assert srv.rd is None
        assert (await n.ask(Code.GET, "rd-lookup/ep")).code == Code.NOT_FOUND
        assert (await n.ask(Code.POST, ".well-known/rd", "ep=x")).code == Code.NOT_FOUND
        wkc = await n.ask(Code.GET, ".well-known/core", "rt=core.rd*")
        assert rd_types(wkc.payload) == {"core.rd"}  # /rd stays: LwM2M registers there
        # A Register with RD parameters goes to LwM2M as before, which refuses its links.
        resp = await n.ask(Code.POST, "rd", "ep=x", "d=y", payload=b"</sensors/t>", cf=40)
        assert resp.code == Code.BAD_REQUEST and b"object list" in resp.payload
        lw = await n.ask(Code.POST, "rd", "ep=dev", "lwm2m=1.1", payload=b"</3/0>", cf=40)
        assert lw.code == Code.CREATED and "dev" in srv.registrations
    finally:
        await n.close()
        await srv.stop()


async def test_simple_registration_over_tcp(secure_server: LwM2MServer) -> None:
    """The RD fetches /.well-known/core over the node's own connection."""
    site = Site()
    site.add("meter/power", Text("17", rt="power"))
    node = await TcpEndpoint.create(listen=False, site=site)
    try:
        remote = (HOST, secure_server.port_of("tcp"))
        post = Message.request(Code.POST, ".well-known/rd", query=["ep=tcp-node", "d=t"])
        assert (await node.request(post, remote, timeout=10)).code == Code.CHANGED
        (reg,) = secure_server.rd.directory.by_id.values()  # type: ignore[union-attr]
        assert reg.transport == "tcp" and reg.base.startswith("coap+tcp://127.0.0.1:")
        assert [link.target for link in reg.links] == ["/meter/power"]
    finally:
        await node.close()
