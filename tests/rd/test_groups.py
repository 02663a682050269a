"""RD groups (RFC 9176 Appendix A) over CoAP: a registration with et=core.rd-group whose
links name member endpoints, found by ?et=core.rd-group and through /.well-known/core;
bad member links are refused and nothing is half-applied."""

from __future__ import annotations

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.server import LwM2MServer

from .conftest import Node, location

GROUP = (b'</light>;rt="light";if="core.a",<>;ep="lamp-1",'
         b'<coap://[2001:db8::3]>;ep="lamp-2";d="hall"')


async def test_group_registration_lookup_and_discovery(server: LwM2MServer, node: Node) -> None:
    loc = location(await node.ask(Code.POST, "rd", "ep=lights", "et=core.rd-group",
                                  "base=coap://[ff05::1]", payload=GROUP, cf=40))
    location(await node.ask(Code.POST, "rd", "ep=lamp-1", payload=b'</light>;rt="light"',
                            cf=40))
    rd = server.rd
    assert rd is not None
    assert rd.group_members("lights") == [("lamp-1", None), ("lamp-2", "hall")]
    assert rd.group_members("lamp-1") is None  # not a group
    got = await node.ask(Code.GET, "rd-lookup/ep", "et=core.rd-group")
    (entry,) = parse_link_format(got.payload)
    assert entry.target == f"/{loc}" and entry.get("ep") == "lights"
    assert entry.get("base") == "coap://[ff05::1]"
    # The group's resources resolve against its multicast base.
    res = await node.ask(Code.GET, "rd-lookup/res", "et=core.rd-group", "rt=light")
    assert res.payload == b'<coap://[ff05::1]/light>;rt="light";if="core.a"'
    # /.well-known/core points at the group lookup, which answers like the query above.
    wkc = await node.ask(Code.GET, ".well-known/core", "rt=core.rd-group")
    (link,) = parse_link_format(wkc.payload)
    assert link.target == "/rd-lookup/ep?et=core.rd-group" and link.get("ct") == "40"
    path, _, query = link.target[1:].partition("?")
    assert (await node.ask(Code.GET, path, query)).payload == got.payload

    # Members added and removed one at a time by link PATCH (their own targets).
    patch = b'{"add": "<coap://[2001:db8::4]>;ep=\\"lamp-3\\"", "remove": ["coap://[2001:db8::3]"]}'
    assert (await node.ask(Code.IPATCH, loc, payload=patch, cf=50)).code == Code.CHANGED
    assert rd.group_members("lights") == [("lamp-1", None), ("lamp-3", None)]


async def test_bad_member_links_change_nothing(server: LwM2MServer, node: Node) -> None:
    long_name = b"x" * 64
    bad = await node.ask(Code.POST, "rd", "ep=g", "et=core.rd-group",
                         payload=b'<>;ep="' + long_name + b'"', cf=40)
    assert bad.code == Code.BAD_REQUEST and b"longer than 63 bytes" in bad.payload
    empty = await node.ask(Code.POST, "rd", "ep=g", "et=core.rd-group",
                           payload=b'<>;ep=""', cf=40)
    assert empty.code == Code.BAD_REQUEST and b"needs a value" in empty.payload
    # An empty target is for member links only.
    plain = await node.ask(Code.POST, "rd", "ep=g2", "d=x", payload=b'<>;rt="x"', cf=40)
    assert plain.code == Code.BAD_REQUEST
    rd = server.rd
    assert rd is not None and len(rd.directory) == 0
    loc = location(await node.ask(Code.POST, "rd", "ep=g", "et=core.rd-group",
                                  payload=b'<>;ep="a"', cf=40))
    before = rd.get(loc[3:])
    update = await node.ask(Code.POST, loc, payload=b'<>;ep="",</x>', cf=40)
    assert update.code == Code.BAD_REQUEST
    patch = await node.ask(Code.PATCH, loc,
                           payload=b'{"add": "<coap://h>;d=\\"' + long_name + b'\\""}', cf=50)
    assert patch.code == Code.BAD_REQUEST
    assert rd.get(loc[3:]) is before
    # Turning a registration into a group checks its links as a group's.
    other = location(await node.ask(Code.POST, "rd", "ep=n", "d=y",
                                    payload=b'<coap://h>;ep="' + long_name + b'"', cf=40))
    turned = await node.ask(Code.POST, other, "et=core.rd-group")
    assert turned.code == Code.BAD_REQUEST
    assert rd.get(other[3:]).endpoint_types == ()  # type: ignore[union-attr]
