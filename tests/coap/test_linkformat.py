from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolwm2m.coap.linkformat import (
    Link,
    LinkFormatError,
    format_link_format,
    parse_link_format,
)


def test_rfc6690_example() -> None:
    text = ('</sensors/temp>;rt="temperature-c";if="sensor",'
            '</sensors/light>;rt="light-lux";if="sensor";obs')
    links = parse_link_format(text)
    assert [link.target for link in links] == ["/sensors/temp", "/sensors/light"]
    assert links[0].get("rt") == "temperature-c"
    assert links[1].has("obs") and links[1].get("obs") is None
    assert format_link_format(links) == text


def test_lwm2m_registration_payload() -> None:
    text = '</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</1>;ver=1.1,</1/0>,</3/0>'
    links = parse_link_format(text.encode())
    assert links[0].values("ct") == ["60", "110", "112", "11542", "11543"]
    assert links[1].get("ver") == "1.1"
    assert format_link_format(links) == text


def test_quoting_and_escapes() -> None:
    links = parse_link_format(r'</a>;title="say \"hi\", ok";anchor="/x"')
    assert links[0].get("title") == 'say "hi", ok'
    assert parse_link_format(format_link_format(links)) == links


def test_repeated_parameters_survive() -> None:
    links = parse_link_format('</a>;rt="x";rt="y";ct=0')
    assert links[0].get_all("rt") == ["x", "y"]
    assert links[0].values("rt") == ["x", "y"]


def test_whitespace_between_links_is_tolerated() -> None:
    assert len(parse_link_format("</a>,\n </b> ")) == 2
    assert parse_link_format("") == []


@pytest.mark.parametrize("bad", ['<a', 'x</a>', '</a>;', '</a>;=1', '</a>;ct=', '</a>;t="x',
                                 '</a>,', '</a> </b>', b'\xff'])
def test_errors(bad: str | bytes) -> None:
    with pytest.raises(LinkFormatError):
        parse_link_format(bad)


names = st.sampled_from(["rt", "if", "ct", "obs", "sz", "title", "ep", "ver", "x-y"])
values = st.one_of(st.none(), st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12))
links = st.lists(st.builds(Link, st.text(st.characters(codec="ascii",
                                                       exclude_characters=">"), max_size=10),
                           st.lists(st.tuples(names, values), max_size=4)), max_size=5)


@given(links)
@settings(max_examples=300)
def test_roundtrip(ls: list[Link]) -> None:
    # A value that is the empty string cannot be written as a ptoken; it is quoted.
    assert parse_link_format(format_link_format(ls)) == ls
