"""The RD's sans-IO parts: parameters, links, routing, URIs, patches and lookups."""

from __future__ import annotations

import json

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.options import OptionNumber
from aiolwm2m.rd.directory import Directory
from aiolwm2m.rd.errors import RdError
from aiolwm2m.rd.links import format_links, parse_links
from aiolwm2m.rd.lookup import format_endpoint, format_resource, parse_lookup
from aiolwm2m.rd.params import parse_rd_register, parse_rd_update
from aiolwm2m.rd.patch import AttributeChange, apply_patch, parse_patch
from aiolwm2m.rd.routing import is_lwm2m_register
from aiolwm2m.rd.uri import base_from_address, check_base, resolve
from aiolwm2m.server.deadlines import Deadlines
from aiolwm2m.store.rd_records import RdLink, RdRegistration


def register(*query: str) -> tuple[object, ...]:
    return tuple(parse_rd_register(list(query), default_lifetime=90000))


def test_register_parameters() -> None:
    p = parse_rd_register(["ep=node1", "d=plant", "lt=60", "base=coap://[2001:db8::1]:5683",
                           "et=oic.d.sensor", "et=x.y", "foo=bar", "flag"],
                          default_lifetime=90000)
    assert p.endpoint == "node1" and p.sector == "plant" and p.lifetime == 60
    assert p.base == "coap://[2001:db8::1]:5683"
    assert p.endpoint_types == ("oic.d.sensor", "x.y")
    assert p.extra == (("foo", "bar"), ("flag", None))
    assert parse_rd_register(["ep=n"], default_lifetime=90000).lifetime == 90000


@pytest.mark.parametrize(("query", "words"), [
    ([], "missing endpoint"),
    (["ep=" + "e" * 64], "ep longer than 63"),
    (["ep=é" * 32], "ep longer than 63"),  # 64 bytes of UTF-8 in 32 characters
    (["ep=n", "d=" + "d" * 64], "d longer than 63"),
    (["ep=n", "lt=0"], "lt="),
    (["ep=n", "lt=4294967296"], "lt="),
    (["ep=n", "lt=-1"], "lt="),
    (["ep=n", "lt=" + "9" * 5000], "lt="),
    (["ep=n", "ep=m"], "twice"),
    (["ep=n", "base=ftp://x"], "base"),
    (["ep=n", "base=coap://"], "base"),
    (["ep=n", "base=coap://h/p?q"], "base"),
    (["ep=n", "page=1"], "not a registration attribute"),
    (["ep=n", "rt=x"], "not a registration attribute"),
    (["ep=n", "=x"], "empty query parameter"),
    (["ep=n", "a b=c"], "not a link attribute name"),
])
def test_bad_register_parameters(query: list[str], words: str) -> None:
    with pytest.raises(RdError) as info:
        parse_rd_register(query, default_lifetime=90000)
    assert info.value.code == Code.BAD_REQUEST
    assert words in info.value.message
    assert len(info.value.message) < 120  # never the peer's input at length


def test_update_parameters() -> None:
    u = parse_rd_update(["lt=30", "base=coap://h:1", "et=a", "x=1"], "node1", "plant")
    assert u.lifetime == 30 and u.base == "coap://h:1" and u.endpoint_types == ("a",)
    assert u.extra == (("x", "1"),)
    assert parse_rd_update(["ep=node1", "d=plant"], "node1", "plant").lifetime is None
    for query in (["ep=other"], ["d=other"], ["lt=0"]):
        with pytest.raises(RdError):
            parse_rd_update(query, "node1", "plant")


def test_links_bounds() -> None:
    links = parse_links(b'</a>;rt="t";ct=0,</b>;obs', 40, max_links=10, max_bytes=100)
    assert links == (RdLink("/a", (("rt", "t"), ("ct", "0"))), RdLink("/b", (("obs", None),)))
    with pytest.raises(RdError) as info:
        parse_links(b"</a>,</b>,</c>", 40, max_links=2, max_bytes=100)
    assert info.value.code == Code.REQUEST_ENTITY_TOO_LARGE
    with pytest.raises(RdError) as info:
        parse_links(b"</a>" * 30, None, max_links=100, max_bytes=100)
    assert info.value.code == Code.REQUEST_ENTITY_TOO_LARGE
    with pytest.raises(RdError) as info:
        parse_links(b"</a>", 50, max_links=10, max_bytes=100)
    assert info.value.code == Code.UNSUPPORTED_CONTENT_FORMAT
    for bad in (b"</a", b"<a>;", b"\xff", b"</a b>", b"<>"):
        with pytest.raises(RdError) as info:
            parse_links(bad, 40, max_links=10, max_bytes=100)
        assert info.value.code == Code.BAD_REQUEST


def _post(query: list[str], payload: bytes = b"") -> Message:
    return Message.request(Code.POST, "rd", query=query, payload=payload)


@pytest.mark.parametrize(("query", "payload", "lwm2m"), [
    (["ep=x", "lt=60", "lwm2m=1.1", "b=U"], b"</3/0>", True),
    (["ep=x", "b=U"], b"</sensors/temp>", True),          # rule 1 wins over the payload
    (["ep=x", "d=plant"], b"</3/0>", False),               # rule 2
    (["ep=x", "et=oic.d"], b"", False),
    (["ep=x", "base=coap://h"], b"</1>", False),
    (["ep=x"], b"", True),                                  # rule 3: empty
    (["ep=x", "lt=60"], b"</1>;ver=1.1,</3/0>,</3303/1>", True),
    (["ep=x"], b'</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>', True),
    (["ep=x"], b"</3/0", True),                             # malformed: LwM2M's error
    (["ep=x"], b'</sensors/temp>;rt="temperature"', False),
    (["ep=x"], b"</3/0>,</light>", False),
])
def test_routing_rule(query: list[str], payload: bytes, lwm2m: bool) -> None:
    msg = _post(query, payload)
    assert is_lwm2m_register(msg.options, msg.payload) is lwm2m


def test_uri_resolution_and_base() -> None:
    assert resolve("coap://[::1]:5683", "/temp") == "coap://[::1]:5683/temp"
    assert resolve("coap://h:1/dev/", "temp") == "coap://h:1/dev/temp"
    assert resolve("coap://h:1/dev/x", "../a") == "coap://h:1/a"
    assert resolve("coap://h:1", "coap://other/x") == "coap://other/x"
    assert resolve("coaps://h", "//g/x") == "coaps://g/x"
    assert base_from_address("dtls", ("2001:db8::1", 5684)) == "coaps://[2001:db8::1]:5684"
    assert base_from_address("tcp", ("10.0.0.1", 5683)) == "coap+tcp://10.0.0.1:5683"
    assert check_base("coap+tcp://h:1/p") == "coap+tcp://h:1/p"


LINKS = (RdLink("/a", (("rt", "x"),)), RdLink("/b", (("rt", "y"), ("obs", None))))


def patch_doc(doc: object, ct: int = 50) -> tuple[RdLink, ...]:
    parsed = parse_patch(json.dumps(doc).encode(), ct, max_links=100, max_bytes=10_000)
    return apply_patch(LINKS, parsed)


def test_patch_applies_in_order() -> None:
    out = patch_doc({"remove": ["/a"], "add": '</c>;rt="z",</a>',
                     "update": {"/b": {"obs": None, "rt": "w", "title": True}}})
    assert format_links(out) == '</b>;rt="w";title,</c>;rt="z",</a>'
    assert LINKS[0].target == "/a"  # the input is untouched


def test_patch_in_cbor() -> None:
    import cbor2
    parsed = parse_patch(cbor2.dumps({"add": ["</c>"]}), 60, max_links=10, max_bytes=1000)
    assert [link.target for link in apply_patch(LINKS, parsed)] == ["/a", "/b", "/c"]


@pytest.mark.parametrize(("doc", "words"), [
    ({"remove": ["/nope"]}, "no link </nope> to remove"),
    ({"update": {"/nope": {"rt": "x"}}}, "no link </nope> to update"),
    ({"add": "</a>"}, "already registered"),
    ({"add": "</a"}, "malformed link format"),
    ({"frobnicate": 1}, "unknown link patch member"),
    ({"remove": "/a"}, "list of strings"),
    ({"update": {"/a": {"rt": 5}}}, "takes a string"),
    ({"update": {"/a": {"bad name": "x"}}}, "not a link attribute name"),
    ([1, 2], "is an object"),
])
def test_bad_patches(doc: object, words: str) -> None:
    with pytest.raises(RdError) as info:
        patch_doc(doc)
    assert info.value.code == Code.BAD_REQUEST and words in info.value.message


@pytest.mark.parametrize("body", [
    rb'{"add": "</x>;a=\"\ud800\""}',
    rb'{"update": {"/x": {"a": "\udfff"}}}',
    rb'{"remove": ["/\ud800"]}',
])
def test_patch_escaping_a_lone_surrogate(body: bytes) -> None:
    # Valid UTF-8 JSON that is no Unicode text: an attribute value holding it would break
    # every lookup listing the link, an added link failed with an unhandled error.
    with pytest.raises(RdError) as info:
        parse_patch(body, 50, max_links=10, max_bytes=1000)
    assert info.value.code == Code.BAD_REQUEST and "lone surrogate" in info.value.message
    paired = parse_patch(rb'{"update": {"/x": {"a": "\u00e9\ud83d\ude00"}}}', 50,
                         max_links=10, max_bytes=1000)
    assert paired.update == (("/x", (AttributeChange("a", "\u00e9\U0001f600"),)),)


def test_patch_not_json_and_wrong_format() -> None:
    with pytest.raises(RdError) as info:
        parse_patch(b"{", 50, max_links=10, max_bytes=100)
    assert info.value.code == Code.BAD_REQUEST
    with pytest.raises(RdError) as info:
        parse_patch(b"[" * 5000 + b"]" * 5000, 50, max_links=10, max_bytes=100_000)
    assert info.value.code == Code.BAD_REQUEST
    with pytest.raises(RdError) as info:
        parse_patch(b"{}", 40, max_links=10, max_bytes=100)
    assert info.value.code == Code.UNSUPPORTED_CONTENT_FORMAT


@pytest.mark.parametrize(("query", "words"), [
    (["page=1"], "page needs count"),
    (["count=0"], "count="),
    (["count=257"], "count="),
    (["count=x"], "count="),
    (["page=-1", "count=2"], "page="),
    (["count=1", "count=2"], "twice"),
    (["=x"], "no attribute name"),
    (["a b=1"], "no attribute name"),
    ([f"f{i}=1" for i in range(17)], "more than 16"),
])
def test_bad_lookup_queries(query: list[str], words: str) -> None:
    with pytest.raises(RdError) as info:
        parse_lookup(query, max_results=256)
    assert info.value.code == Code.BAD_REQUEST and words in info.value.message


def reg(rid: str, ep: str, *, d: str | None = None, et: tuple[str, ...] = (),
        links: tuple[RdLink, ...] = LINKS, seq: int = 0, extra: tuple[tuple[str, str | None],
                                                                      ...] = ()
        ) -> RdRegistration:
    return RdRegistration(id=rid, endpoint=ep, sector=d, lifetime=100,
                          base=f"coap://[2001:db8::{seq:x}]:5683", endpoint_types=et,
                          links=links, extra=extra, updated_at=1000.0, sequence=seq)


def filled(n: int = 50) -> Directory:
    directory = Directory(Deadlines())
    for i in range(n):
        directory.put(reg(f"id{i}", f"meter-{i:03d}", d="plant-1" if i % 2 else "plant-2",
                          et=("meter",) if i % 5 == 0 else ("sensor",), seq=i + 1,
                          links=(RdLink("/v", (("rt", f"rt{i % 7}"), ("if", "core.s"))),
                                 RdLink("/w"))), None)
    return directory


def eps(directory: Directory, *query: str) -> list[str]:
    found = directory.lookup_endpoints(parse_lookup(list(query), max_results=256))
    return [dict(e.attributes)["ep"] or "" for e in found]


def test_lookup_filters_wildcards_and() -> None:
    d = filled()
    assert eps(d, "ep=meter-007") == ["meter-007"]
    assert eps(d, "ep=meter-00*") == [f"meter-00{i}" for i in range(10)]
    assert eps(d, "ep=meter-00*", "d=plant-1") == ["meter-001", "meter-003", "meter-005",
                                                     "meter-007", "meter-009"]
    assert eps(d, "et=meter", "d=plant-2") == ["meter-000", "meter-010", "meter-020",
                                                 "meter-030", "meter-040"]
    assert eps(d, "rt=rt3", "count=2") == ["meter-003", "meter-010"]
    assert eps(d, "rt=rt3", "page=1", "count=2") == ["meter-017", "meter-024"]
    assert eps(d, "if=core.s", "ep=meter-04*") == [f"meter-04{i}" for i in range(10)]
    assert eps(d, "ep=nope") == []
    assert eps(d, "d") == eps(d)  # presence: every one has a sector
    assert eps(d, "href=/rd/id4") == ["meter-004"]
    assert eps(d, "base=coap://[2001:db8::a]:5683") == ["meter-009"]
    assert len(eps(d)) == 50 and len(eps(d, "count=256")) == 50


def test_resource_lookup_resolves_targets() -> None:
    d = Directory(Deadlines())
    d.put(reg("a", "n1", seq=1, links=(RdLink("/t", (("rt", "temperature"),)),
                                       RdLink("x", (("anchor", "/t"), ("rel", "alt"))))), None)
    found = d.lookup_resources(parse_lookup(["ep=n1"], max_results=256))
    assert [format_resource(e, link) for e, link in found] == [
        '<coap://[2001:db8::1]:5683/t>;rt="temperature"',
        '<coap://[2001:db8::1]:5683/x>;anchor="coap://[2001:db8::1]:5683/t";rel=alt']
    found = d.lookup_resources(parse_lookup(["href=coap://[2001:db8::1]:5683/t"],
                                            max_results=256))
    assert len(found) == 1
    (entry,) = d.lookup_endpoints(parse_lookup(["rt=temp*"], max_results=256))
    assert format_endpoint(entry) == '</rd/a>;ep="n1";base="coap://[2001:db8::1]:5683"'


def test_indexed_lookup_touches_only_its_candidates() -> None:
    """A lookup by an indexed attribute builds entries only for what the index names: the
    directory caches the entry of every registration a lookup visited."""
    d = filled(2000)
    assert eps(d, "ep=meter-9999") == []
    assert eps(d, "ep=meter-123") == ["meter-123"]
    assert len(d._entries) == 1
    assert len(eps(d, "ep=meter-12*")) == 110  # meter-12x and meter-12xx
    assert len(d._entries) == 110
    eps(d, "et=meter", "rt=rt6")  # et: 400 candidates, rt: ~286; the smaller set is walked
    assert len(d._entries) <= 110 + 286
    eps(d, "foo=bar")  # not indexed: a scan
    assert len(d._entries) == 2000


def test_index_follows_updates_and_removals() -> None:
    d = filled(10)
    old = d.by_id["id3"]
    new = RdRegistration(**{**{f: getattr(old, f) for f in old.__dataclass_fields__},
                            "links": (RdLink("/z", (("rt", "fresh"),)),),
                            "endpoint_types": ("changed",)})
    d.put(new, old)
    assert eps(d, "rt=fresh") == ["meter-003"] and eps(d, "rt=rt3") == []
    assert eps(d, "et=changed") == ["meter-003"]
    d.drop(new)
    assert eps(d, "ep=meter-003") == [] and eps(d, "rt=fresh") == []
    assert all("id3" not in ids for index in d.index.by_attribute.values()
               for ids in index.exact.values())
    assert "fresh" not in d.index.by_link_attribute["rt"].exact  # its link set is gone
    assert d.index.link_set_count() == 9  # (each of filled()'s has its own links)


def test_registrations_of_one_kind_share_a_link_set() -> None:
    d = Directory(Deadlines())
    for i in range(100):
        d.put(reg(f"r{i}", f"n{i}", seq=i + 1), None)  # all with the same LINKS tuple
    assert d.index.link_set_count() == 1
    assert d.index.by_link_attribute["rt"].exact == {"x": {id(LINKS)}, "y": {id(LINKS)}}
    assert len(eps(d, "rt=y", "count=256")) == 100
    for i in range(100):
        d.drop(d.by_id[f"r{i}"])
    assert d.index.link_set_count() == 0 and not d.index.by_link_attribute["rt"].exact


def test_due_registrations() -> None:
    d = filled(3)
    assert d.due(1099.0) == []
    assert sorted(r.id for r in d.due(1100.0)) == ["id0", "id1", "id2"]


def test_if_match_option_number() -> None:
    assert OptionNumber.IF_MATCH == 1
