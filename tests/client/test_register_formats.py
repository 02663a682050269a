"""What a Register announces on its root link (``ct``), and what the server takes there.

A 1.1 Register names one preferred format (Wakaama-based servers answer 4.00 to a list); a
1.2 Register lists them; the server accepts every form: a quoted single value, a quoted list,
an unquoted value, and no ``ct`` at all. The exact bytes our client sends are checked in
test_aiocoap_peer.py against an aiocoap peer."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.cli.client_commands import content_formats_arg
from aiolwm2m.client import ClientConfig
from aiolwm2m.client.registration import announced_formats
from aiolwm2m.lwm2m import ContentFormat
from aiolwm2m.server import LwM2MServer

from .conftest import ClientFactory

CF = ContentFormat


@pytest.fixture
async def coap() -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context()
    yield ctx
    await ctx.shutdown()


@pytest.mark.parametrize(("root", "formats"), [
    ('</>;rt="oma.lwm2m";ct="110",', (110,)),
    ('</>;rt="oma.lwm2m";ct="60 110 112 11542 11543 11544",', (60, 110, 112, 11542, 11543,
                                                              11544)),
    ('</>;rt="oma.lwm2m";ct=11542,', (11542,)),
    ('</>;rt="oma.lwm2m",', ()),
    ("", ()),
])
async def test_server_accepts_every_form_of_ct(server: LwM2MServer, coap: aiocoap.Context,
                                               root: str, formats: tuple[int, ...]) -> None:
    payload = (root + "</1/0>,</3/0>").encode()
    req = aiocoap.Message(code=C.POST, payload=payload, content_format=40,
                          uri=f"coap://[::1]:{server.port}/rd?ep=ct-dev&lt=60&lwm2m=1.1&b=U")
    resp = await coap.request(req).response
    assert resp.code == C.CREATED, resp.payload
    assert server.registrations["ct-dev"].content_formats == formats


async def test_client_registers_with_the_configured_format(
        server: LwM2MServer, make_client: ClientFactory) -> None:
    await make_client(server_port=server.port, content_formats=(CF.SENML_CBOR,))
    assert server.registrations["dev-1"].content_formats == (CF.SENML_CBOR,)
    assert (await server.read("dev-1", "/3/0")).format == CF.SENML_CBOR


def test_announced_formats() -> None:
    assert announced_formats("1.1") == (CF.SENML_JSON,)
    assert announced_formats("1.2") == (60, 110, 112, 11542, 11543, 11544)
    assert announced_formats("1.1", (11542,)) == (11542,)
    assert announced_formats("1.1", ()) == ()
    assert announced_formats("1.2", [112, 110]) == (112, 110)
    with pytest.raises(ValueError, match="one preferred content format"):
        announced_formats("1.1", (110, 112))
    with pytest.raises(ValueError, match="9999"):
        announced_formats("1.2", (110, 9999))
    with pytest.raises(ValueError, match="twice"):
        announced_formats("1.2", (110, 110))


def test_client_config_checks_the_formats() -> None:
    uri = "coap://[::1]:5683"
    assert ClientConfig.development("d", uri).announced_content_formats == (110,)
    cfg = ClientConfig.development("d", uri, lwm2m_version="1.2", content_formats=(112,))
    assert cfg.announced_content_formats == (112,)
    with pytest.raises(ValueError, match="one preferred"):
        ClientConfig.development("d", uri, content_formats=(110, 112))
    with pytest.raises(ValueError, match="lwm2m_version"):
        ClientConfig.development("d", uri, lwm2m_version="1.0")


def test_content_format_flag() -> None:
    assert content_formats_arg("110") == (110,)
    assert content_formats_arg("senml-cbor, tlv,11544") == (112, 11542, 11544)
    assert content_formats_arg("none") == ()
    with pytest.raises(argparse.ArgumentTypeError, match="bogus"):
        content_formats_arg("bogus")
