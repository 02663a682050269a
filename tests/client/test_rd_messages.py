"""The RD messages from the registering side, sans-IO: requests built, answers read, and
whatever an RD answers turned into a location, a path or a precise error, never a crash."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.rd_client.messages import (
    MAX_DISCOVERED_LINKS,
    RdProtocolError,
    RdRegistration,
    RdRejected,
    diagnostic,
    location_of,
    lookup_request,
    parse_links,
    path_of,
    resource_path,
    simple_register_request,
    update_request,
)


def answer(code: int, payload: bytes = b"", content_format: int | None = None) -> Message:
    request = Message.request(Code.GET, "/x")
    return request.response(code, payload, content_format)


def test_simple_registration_carries_no_base_and_no_links() -> None:
    reg = RdRegistration.build("n", sector="d1", base="coap://192.0.2.1", lifetime=60,
                               links="</a>", endpoint_types="t")
    msg = simple_register_request(reg)
    assert msg.uri_path == (".well-known", "rd")
    assert msg.uri_query == ["ep=n", "d=d1", "lt=60", "et=t"] and msg.payload == b""


def test_update_carries_only_what_changed() -> None:
    assert update_request(("rd", "4")).uri_query == []
    msg = update_request(("rd", "4"), lifetime=10, base="coap://192.0.2.9", extra=(("a", None),))
    assert msg.code == Code.POST and msg.uri_path == ("rd", "4")
    assert msg.uri_query == ["lt=10", "base=coap://192.0.2.9", "a"]


def test_lookup_query() -> None:
    msg = lookup_request(("rd-lookup", "res"), [("rt", "temp*"), ("obs", None)], page=2,
                         count=10)
    assert msg.uri_query == ["rt=temp*", "obs", "page=2", "count=10"] and msg.accept == 40


def test_discovery_takes_the_first_matching_link_on_the_rd_itself() -> None:
    body = (b'</x>;rt="core.rd-lookup-ep",<coap://[::1]:5683/reg/dir/>;rt="a core.rd b",'
            b'</other>;rt="core.rd";anchor="coap://elsewhere"')
    assert resource_path(answer(Code.CONTENT, body, 40), "core.rd") == ("reg", "dir", "")
    assert resource_path(answer(Code.CONTENT, body, 40), "core.rd-lookup-ep") == ("x",)


def test_discovery_errors_say_what_is_wrong() -> None:
    for response, message in [
        (answer(Code.CONTENT, b"</x>;rt=other", 40), "lists no rt=core.rd"),
        (answer(Code.CONTENT, b"<x", 40), "malformed: unterminated '<'"),
        (answer(Code.CONTENT, b"{}", 50), "content format 50"),
        (answer(Code.CONTENT, b"</a>," * (MAX_DISCOVERED_LINKS + 1) + b"</a>", 40),
         f"more than {MAX_DISCOVERED_LINKS} links"),
    ]:
        with pytest.raises(RdProtocolError, match=re.escape(message)):
            resource_path(response, "core.rd")
    with pytest.raises(RdRejected) as info:
        resource_path(answer(Code.NOT_FOUND, b"nope", 0), "core.rd")
    assert info.value.code == Code.NOT_FOUND
    assert str(info.value) == "discovery answered 4.04: nope"


def test_a_registration_answer_needs_a_location() -> None:
    created = answer(Code.CREATED)
    created.location_path = ("rd", "7")
    assert location_of(created) == ("rd", "7")
    with pytest.raises(RdProtocolError, match="without Location-Path"):
        location_of(answer(Code.CREATED))


def test_max_age_of_a_503_is_kept() -> None:
    busy = answer(Code.SERVICE_UNAVAILABLE)
    busy.max_age = 42
    with pytest.raises(RdRejected) as info:
        location_of(busy)
    assert (info.value.code, info.value.max_age) == (Code.SERVICE_UNAVAILABLE, 42)


def test_an_rds_diagnostic_is_shortened_and_printable() -> None:
    text = diagnostic(answer(Code.BAD_REQUEST, b"bad\x1b[31m" + b"x" * 500, 0))
    assert text.startswith("bad?[31m") and len(text) == 120 and text.endswith("...")
    assert diagnostic(answer(Code.BAD_REQUEST, b"\x00\x01", 42)) == ""


def test_path_of_link_targets() -> None:
    assert path_of("/rd") == ("rd",)
    assert path_of("/resourcedirectory/") == ("resourcedirectory", "")
    assert path_of("coap://[::1]:5683/a/b%2Fc?x=1") == ("a", "b/c")
    assert path_of("coap://host") == ()
    assert path_of("rel/ative") == ("rel", "ative")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from([None, 0, 40, 50]),
       st.sampled_from([Code.CONTENT, Code.CREATED, Code.NOT_FOUND, Code.CHANGED]))
def test_any_answer_is_read_or_refused_precisely(payload: bytes, cf: int | None,
                                                 code: int) -> None:
    response = answer(code, payload, cf)
    for read in (lambda: resource_path(response, "core.rd"), lambda: location_of(response),
                 lambda: parse_links(response, "lookup")):
        try:
            read()
        except (RdProtocolError, RdRejected):
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_path_of_never_fails(target: str) -> None:
    assert isinstance(path_of(target), tuple)
