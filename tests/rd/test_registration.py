"""Generic RD registrations over real UDP (SQLite store): register, read, update, patch,
delete, simple registration, and the /rd routing between LwM2M and the RD."""

from __future__ import annotations

import json
from pathlib import Path

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import Updated
from aiolwm2m.transport.site import Site
from tests.fake_clock import FakeClock

from .conftest import Node, Text, location, new_node, rd_config

LINKS = b'</sensors/temp>;rt="temperature";if="core.s",</sensors/hum>;rt="humidity"'
LWM2M_LINKS = b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>'


async def test_register_read_update_delete(server: LwM2MServer, node: Node) -> None:
    resp = await node.ask(Code.POST, "rd", "ep=node1", "d=plant", "lt=120", "et=oic.d.sensor",
                          "site=north", payload=LINKS, cf=40)
    loc = location(resp)
    assert loc.startswith("rd/")
    reg = server.rd.get(loc[3:])  # type: ignore[union-attr]
    assert reg is not None and reg.endpoint == "node1" and reg.sector == "plant"
    assert reg.lifetime == 120 and reg.endpoint_types == ("oic.d.sensor",)
    assert reg.base == f"coap://127.0.0.1:{node.endpoint.port}" and not reg.base_explicit
    assert reg.extra == (("site", "north"),)
    assert "node1" not in server.registrations  # not an LwM2M registration

    got = await node.ask(Code.GET, loc)
    assert got.code == Code.CONTENT and got.content_format == 40
    assert [link.target for link in parse_link_format(got.payload)] == ["/sensors/temp",
                                                                         "/sensors/hum"]
    assert got.etag is not None and len(got.etag) == 8
    filtered = await node.ask(Code.GET, loc, "rt=humidity")
    assert filtered.payload == b'</sensors/hum>;rt="humidity"'

    resp = await node.ask(Code.POST, loc, "lt=300", "site=south")
    assert resp.code == Code.CHANGED
    reg = server.rd.get(loc[3:])  # type: ignore[union-attr]
    assert reg is not None and reg.lifetime == 300 and reg.extra == (("site", "south"),)
    assert len(reg.links) == 2  # an update without a body keeps the links
    resp = await node.ask(Code.POST, loc, payload=b"</light>", cf=40)
    assert resp.code == Code.CHANGED
    assert [link.target for link in server.rd.get(loc[3:]).links] == ["/light"]  # type: ignore

    # Registering the same (ep, d) again keeps the location and replaces the links.
    again = await node.ask(Code.POST, "rd", "ep=node1", "d=plant", payload=b"</a>,</b>", cf=40)
    assert location(again) == loc
    assert [link.target for link in server.rd.get(loc[3:]).links] == ["/a", "/b"]  # type: ignore
    # Another sector is another registration.
    other = await node.ask(Code.POST, "rd", "ep=node1", "d=lab", payload=b"</a>", cf=40)
    assert location(other) != loc

    assert (await node.ask(Code.DELETE, loc)).code == Code.DELETED
    assert (await node.ask(Code.GET, loc)).code == Code.NOT_FOUND
    assert (await node.ask(Code.POST, loc, "lt=5")).code == Code.NOT_FOUND
    assert (await node.ask(Code.DELETE, loc)).code == Code.NOT_FOUND


async def test_location_is_the_capability_for_nosec(server: LwM2MServer, node: Node) -> None:
    """A NoSec registration may be updated and deleted from another address (command-line
    clients use a new port per request); an implicit base follows it, an explicit one
    stays."""
    loc = location(await node.ask(Code.POST, "rd", "ep=n", "d=x", payload=b"</a>", cf=40))
    fixed = location(await node.ask(Code.POST, "rd", "ep=m", "d=x", "base=coap://[2001:db8::7]",
                                    payload=b"</a>", cf=40))
    other = await new_node(server)
    try:
        assert (await other.ask(Code.POST, loc)).code == Code.CHANGED
        assert (await other.ask(Code.POST, fixed)).code == Code.CHANGED
        assert server.rd.get(loc[3:]).base == (  # type: ignore[union-attr]
            f"coap://127.0.0.1:{other.endpoint.port}")
        assert server.rd.get(fixed[3:]).base == "coap://[2001:db8::7]"  # type: ignore
        assert (await other.ask(Code.DELETE, loc)).code == Code.DELETED
    finally:
        await other.close()


async def test_routing_between_lwm2m_and_rd(server: LwM2MServer, node: Node) -> None:
    events = server.events.stream()
    lw = await node.ask(Code.POST, "rd", "ep=dev-1", "lt=60", "lwm2m=1.1", "b=U",
                        payload=LWM2M_LINKS, cf=40)
    assert lw.code == Code.CREATED
    assert "dev-1" in server.registrations and server.rd.get(lw.location_path[1]) is None  # type: ignore
    # Only ep and lt, with object links: LwM2M (1.0 clients need not send lwm2m=).
    bare = await node.ask(Code.POST, "rd", "ep=dev-2", "lt=60", payload=b"</3/0>", cf=40)
    assert bare.code == Code.CREATED and "dev-2" in server.registrations
    # Only ep and lt, with resource links: a generic registration.
    gen = await node.ask(Code.POST, "rd", "ep=thing", "lt=60", payload=LINKS, cf=40)
    assert gen.code == Code.CREATED and "thing" not in server.registrations
    assert server.rd.get(gen.location_path[1]) is not None  # type: ignore[union-attr]
    # d, et or base make it generic whatever the links look like.
    gen2 = await node.ask(Code.POST, "rd", "ep=thing2", "et=x", payload=b"</3/0>", cf=40)
    assert gen2.code == Code.CREATED and "thing2" not in server.registrations
    # An LwM2M registration's own location still takes its Update, GET and DELETE.
    lw_loc = "/".join(lw.location_path)
    assert (await node.ask(Code.POST, lw_loc, "lt=90")).code == Code.CHANGED
    assert server.registrations["dev-1"].lifetime == 90
    got = await node.ask(Code.GET, lw_loc)
    assert got.code == Code.CONTENT and got.payload == LWM2M_LINKS
    # A generic registration may not take a live LwM2M endpoint's name (no sector).
    taken = await node.ask(Code.POST, "rd", "ep=dev-1", "et=x", payload=b"</a>", cf=40)
    assert (taken.code, taken.payload) == (Code.FORBIDDEN, b"endpoint name in use")
    assert server.refusals.by_reason["rd-name-taken"] == 1
    assert (await node.ask(Code.DELETE, lw_loc)).code == Code.DELETED
    assert "dev-1" not in server.registrations
    kinds = [e.name for e in [events._queue.get_nowait() for _ in range(events._queue.qsize())]]
    assert kinds.count("registered") == 2 and "updated" in kinds


async def test_lwm2m_links_patched_without_reregistering(server: LwM2MServer,
                                                         node: Node) -> None:
    lw = await node.ask(Code.POST, "rd", "ep=dev-1", "lt=60", "lwm2m=1.1",
                        payload=LWM2M_LINKS, cf=40)
    loc = "/".join(lw.location_path)
    reg = server.registrations["dev-1"]
    events = server.events.stream()
    doc = {"add": "</3303/0>,</3303/1>", "remove": ["/1/0"]}
    resp = await node.ask(Code.PATCH, loc, payload=json.dumps(doc).encode(), cf=50)
    assert resp.code == Code.CHANGED and resp.etag is not None
    after = server.registrations["dev-1"]
    assert after.id == reg.id  # the same registration, no re-register
    assert {(o.object_id, o.instance_id) for o in after.objects} == {
        (1, None), (3, None), (3, 0), (3303, None), (3303, 0), (3303, 1)}
    ev = await events.until(Updated)
    assert isinstance(ev, Updated) and ev.registration is after
    got = await node.ask(Code.GET, loc)
    assert got.etag == resp.etag
    # A link that does not exist: 4.00, and nothing changes.
    bad = await node.ask(Code.IPATCH, loc, payload=b'{"remove": ["/9/9"], "add": "</4/0>"}',
                         cf=50)
    assert bad.code == Code.BAD_REQUEST and b"/9/9" in bad.payload
    assert server.registrations["dev-1"] is after
    # Something that is no object: the LwM2M object list refuses it, nothing changes.
    bad = await node.ask(Code.PATCH, loc, payload=b'{"add": "</sensors/x>"}', cf=50)
    assert bad.code == Code.BAD_REQUEST and server.registrations["dev-1"] is after
    # If-Match with a stale ETag: 4.12, nothing changes; with the current one it applies.
    stale = await _patch(node, loc, b'{"remove": ["/3303/1"]}', if_match=b"\x01" * 8)
    assert stale.code == Code.PRECONDITION_FAILED
    assert server.registrations["dev-1"] is after
    ok = await _patch(node, loc, b'{"remove": ["/3303/1"]}', if_match=resp.etag)
    assert ok.code == Code.CHANGED
    assert (3303, 1) not in {(o.object_id, o.instance_id)
                             for o in server.registrations["dev-1"].objects}


async def test_generic_patch_with_if_match(server: LwM2MServer, node: Node) -> None:
    loc = location(await node.ask(Code.POST, "rd", "ep=n", "d=x", payload=LINKS, cf=40))
    etag = (await node.ask(Code.GET, loc)).etag
    assert etag is not None
    doc = b'{"update": {"/sensors/temp": {"obs": true}}, "remove": ["/sensors/hum"]}'
    msg_stale = await _patch(node, loc, doc, if_match=b"\x00" * 8)
    assert msg_stale.code == Code.PRECONDITION_FAILED
    assert len(server.rd.get(loc[3:]).links) == 2  # type: ignore[union-attr]
    ok = await _patch(node, loc, doc, if_match=etag)
    assert ok.code == Code.CHANGED and ok.etag not in (None, etag)
    links = server.rd.get(loc[3:]).links  # type: ignore[union-attr]
    assert [(link.target, link.params[-1]) for link in links] == [("/sensors/temp",
                                                                  ("obs", None))]
    # The same document again names a link that is gone: 4.00, nothing changes.
    again = await _patch(node, loc, doc, if_match=ok.etag)
    assert again.code == Code.BAD_REQUEST and server.rd.get(loc[3:]).links == links  # type: ignore


async def _patch(node: Node, loc: str, doc: bytes, if_match: bytes | None) -> Message:
    msg = Message.request(Code.PATCH, loc, payload=doc, content_format=50)
    if if_match is not None:
        msg.add_option(OptionNumber.IF_MATCH, if_match)
    return await node.endpoint.request(msg, node.rd, timeout=10)


async def test_simple_registration(server: LwM2MServer) -> None:
    site = Site()
    site.add("sensors/temp", Text("21.5", rt="temperature"))
    site.add("sensors/light", Text("300", rt="light"))
    n = await new_node(server, site)
    try:
        resp = await n.ask(Code.POST, ".well-known/rd", "ep=simple-1", "lt=600", "d=lab")
        assert resp.code == Code.CHANGED, resp.payload
        found = await n.ask(Code.GET, "rd-lookup/res", "ep=simple-1", "rt=temperature")
        assert found.payload == (f'<coap://127.0.0.1:{n.endpoint.port}/sensors/temp>;'
                                 'rt="temperature"').encode()
        # base is the address the request came from; a simple registration cannot set it.
        bad = await n.ask(Code.POST, ".well-known/rd", "ep=s2", "base=coap://x")
        assert bad.code == Code.BAD_REQUEST
        bad = await n.ask(Code.POST, ".well-known/rd", "ep=s2", payload=b"</a>", cf=40)
        assert bad.code == Code.BAD_REQUEST
    finally:
        await n.close()


async def test_simple_registration_of_a_node_without_links(server: LwM2MServer) -> None:
    """A node that answers /.well-known/core with garbage: 5.02, nothing registered."""
    from aiolwm2m.transport.site import RenderResult, Resource

    class Garbage(Resource):
        def render_get(self, request: Message) -> RenderResult:
            return request.response(Code.CONTENT, b"</broken", 40)

    site = Site(well_known_core=False)
    site.add(".well-known/core", Garbage())
    n = await new_node(server, site)
    try:
        resp = await n.ask(Code.POST, ".well-known/rd", "ep=garbled")
        assert resp.code == Code.BAD_GATEWAY
        assert len(server.rd.directory) == 0  # type: ignore[union-attr]
    finally:
        await n.close()


async def test_restart_keeps_registrations(tmp_path: Path, clock: FakeClock) -> None:
    srv = LwM2MServer(rd_config(tmp_path, clock))
    await srv.start()
    n = await new_node(srv)
    loc = location(await n.ask(Code.POST, "rd", "ep=keep", "d=x", "lt=1000", payload=LINKS,
                               cf=40))
    short = location(await n.ask(Code.POST, "rd", "ep=short", "d=x", "lt=10", payload=b"</a>",
                                 cf=40))
    patched = await n.ask(Code.PATCH, loc, payload=b'{"remove": ["/sensors/hum"]}', cf=50)
    assert patched.code == Code.CHANGED
    await n.close()
    await srv.stop()
    clock.advance(100)  # "short" runs out while the server is down
    srv = LwM2MServer(rd_config(tmp_path, clock))
    await srv.start()
    try:
        n = await new_node(srv)
        reg = srv.rd.get(loc[3:])  # type: ignore[union-attr]
        assert reg is not None and [link.target for link in reg.links] == ["/sensors/temp"]
        assert srv.rd.get(short[3:]) is None  # type: ignore[union-attr]
        found = await n.ask(Code.GET, "rd-lookup/ep", "d=x")
        assert found.payload.startswith(f'</{loc}>;ep="keep"'.encode())
        # The location survives: it still takes updates.
        assert (await n.ask(Code.POST, loc, "lt=50")).code == Code.CHANGED
        await n.close()
    finally:
        await srv.stop()


async def test_lifetimes_on_the_expiry_wheel(server: LwM2MServer, node: Node,
                                             clock: FakeClock) -> None:
    loc = location(await node.ask(Code.POST, "rd", "ep=brief", "d=x", "lt=30", payload=b"</a>",
                                  cf=40))
    clock.advance(20)
    assert (await node.ask(Code.POST, loc)).code == Code.CHANGED  # refreshed at 20 s
    clock.advance(20)
    await server.tick()
    assert server.rd.get(loc[3:]) is not None  # type: ignore[union-attr]
    clock.advance(11)
    await server.tick()
    assert server.rd.get(loc[3:]) is None  # type: ignore[union-attr]
    assert (await node.ask(Code.GET, "rd-lookup/ep", "ep=brief")).payload == b""
