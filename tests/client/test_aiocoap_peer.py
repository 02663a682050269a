"""The client against a device-management peer it did not write: aiocoap plays the LwM2M
server, registers the client, and checks raw responses byte by byte."""

from __future__ import annotations

import json

import cbor2
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.client import LwM2MClient, TemperatureInstance

from .aiocoap_server import AiocoapLwM2MServer
from .conftest import ClientFactory, eventually

TLV, SENML_JSON, SENML_CBOR, LWM2M_CBOR, TEXT, LINK = 11542, 110, 112, 11544, 0, 40


def senml_values(records: list[dict[object, object]], bn: object, n: object, v: object
                 ) -> dict[str, object]:
    """Full name -> value of SenML records (base names resolved)."""
    out: dict[str, object] = {}
    base = ""
    for record in records:
        base = str(record.get(bn, base))
        out[base + str(record.get(n, ""))] = record.get(v)
    return out


def flatten(tree: object, prefix: tuple[int, ...] = ()) -> dict[tuple[int, ...], object]:
    """LwM2M CBOR nests ids as map keys, single ids or id arrays: path -> value."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[tuple[int, ...], object] = {}
    for key, value in tree.items():
        ids = tuple(key) if isinstance(key, list | tuple) else (key,)
        out.update(flatten(value, prefix + ids))
    return out


#: The object list of the test client, after the root link.
OBJECTS = ("</1>;ver=1.1,</1/0>,</2>;ver=1.1,</3>;ver=1.2,</3/0>,</4>;ver=1.3,</4/0>,"
           "</5>;ver=1.2,</5/0>,</6/0>,</7/0>,</3303>;ver=1.1,</3303/0>")


async def test_register_message(peer: AiocoapLwM2MServer, client: LwM2MClient) -> None:
    reg = peer.rd.registrations[0]
    query = dict(q.partition("=")[::2] for q in reg.opt.uri_query)
    assert query == {"ep": "peer-dev", "lt": "300", "lwm2m": "1.1", "b": "U"}
    assert reg.opt.content_format == LINK
    # LwM2M 1.1: one preferred format, unquoted (what Wakaama's server parses), no list.
    assert reg.payload.decode() == '</>;rt="oma.lwm2m";ct=110,' + OBJECTS


@pytest.mark.parametrize(("settings", "root"), [
    ({"lwm2m_version": "1.2"}, '</>;rt="oma.lwm2m";ct="60 110 112 11542 11543 11544",'),
    ({"lwm2m_version": "1.2", "content_formats": (112, 110)},
     '</>;rt="oma.lwm2m";ct="112 110",'),
    ({"content_formats": (SENML_CBOR,)}, '</>;rt="oma.lwm2m";ct=112,'),
    ({"content_formats": ()}, ""),
])
async def test_register_message_announces_the_configured_formats(
        peer: AiocoapLwM2MServer, make_client: ClientFactory, settings: dict[str, object],
        root: str) -> None:
    await make_client("peer-dev", server_port=peer.port, register=False,
                      objects=[TemperatureInstance(0)], **settings)
    await eventually(lambda: bool(peer.rd.registrations), 5)
    reg = peer.rd.registrations[0]
    query = dict(q.partition("=")[::2] for q in reg.opt.uri_query)
    assert query["lwm2m"] == settings.get("lwm2m_version", "1.1")
    assert reg.payload.decode() == root + OBJECTS


async def test_reads_byte_exact(peer: AiocoapLwM2MServer, client: LwM2MClient) -> None:
    resp = await peer.request(C.GET, "/3/0/2", accept=TEXT)
    assert (resp.code, resp.opt.content_format, resp.payload) == (C.CONTENT, TEXT,
                                                                  b"peer-dev")
    resp = await peer.request(C.GET, "/3/0/2", accept=TLV)
    assert resp.opt.content_format == TLV and resp.payload == b"\xc8\x02\x08peer-dev"
    resp = await peer.request(C.GET, "/3303/0/5700", accept=SENML_JSON)
    assert resp.opt.content_format == SENML_JSON
    assert senml_values(json.loads(resp.payload), "bn", "n", "v") == {"/3303/0/5700": 20.0}
    resp = await peer.request(C.GET, "/3303/0/5700", accept=SENML_CBOR)
    assert senml_values(cbor2.loads(resp.payload), -2, 0, 2) == {"/3303/0/5700": 20.0}
    resp = await peer.request(C.GET, "/1/0/1", accept=LWM2M_CBOR)
    assert resp.opt.content_format == LWM2M_CBOR
    assert flatten(cbor2.loads(resp.payload)) == {(1, 0, 1): 300}
    resp = await peer.request(C.GET, "/3303/0", accept=LINK)
    assert resp.opt.content_format == LINK
    assert resp.payload.decode().split(",")[:2] == ["</3303/0>", "</3303/0/5601>"] or (
        resp.payload.startswith(b"</3303/0>,</3303/0/5"))


async def test_write_execute_and_observe(peer: AiocoapLwM2MServer, client: LwM2MClient
                                         ) -> None:
    resp = await peer.request(C.PUT, "/3/0/14", payload=b"+04:00", content_format=TEXT)
    assert resp.code == C.CHANGED and client.instance(3).get(14) == "+04:00"
    resp = await peer.request(C.POST, "/3/0/4")
    assert resp.code == C.CHANGED
    resp = await peer.request(C.PUT, "/3303/0/5700", query=["pmin=0", "st=1"])
    assert resp.code == C.CHANGED
    assert peer.context is not None
    request = peer.context.request(peer.message(C.GET, "/3303/0/5700", accept=TEXT,
                                                observe=0))
    first = await request.response
    assert first.code == C.CONTENT and first.payload == b"20.0"
    assert first.opt.observe is not None
    notifications = request.observation.__aiter__()
    temperature = client.instance(3303)
    temperature.set(5700, 20.5)  # below st: not notified
    temperature.set(5700, 22.0)
    note = await notifications.__anext__()
    assert note.payload == b"22.0" and note.opt.observe > first.opt.observe
    request.observation.cancel()


@pytest.mark.parametrize(("method", "path", "kwargs", "code"), [
    (C.GET, "/3/0/99", {}, C.NOT_FOUND),
    (C.GET, "/12345", {}, C.NOT_FOUND),
    (C.GET, "/x/y", {}, C.NOT_FOUND),
    (C.GET, "/0/0", {}, C.UNAUTHORIZED),
    (C.GET, "/3/0", {"accept": TEXT}, C.NOT_ACCEPTABLE),
    (C.GET, "/3/0", {"accept": 50}, C.NOT_ACCEPTABLE),
    (C.GET, "/3/0/4", {}, C.METHOD_NOT_ALLOWED),
    (C.PUT, "/3/0/1", {"payload": b"m", "content_format": TEXT}, C.METHOD_NOT_ALLOWED),
    (C.PUT, "/3/0/14", {"payload": b"{}", "content_format": 50}, C.UNSUPPORTED_CONTENT_FORMAT),
    (C.PUT, "/3/0/14", {"payload": b"\xc8", "content_format": TLV}, C.BAD_REQUEST),
    (C.PUT, "/3303/0/5700", {"query": ["pmin=-1"]}, C.BAD_REQUEST),
    (C.PUT, "/3303/0/5700", {"query": ["lt=10", "gt=5"]}, C.BAD_REQUEST),
    (C.PUT, "/3303/0/5700", {"query": ["bogus=1"]}, C.BAD_REQUEST),
    (C.POST, "/3/0/0", {}, C.METHOD_NOT_ALLOWED),
    (C.DELETE, "/3", {}, C.METHOD_NOT_ALLOWED),
    (C.FETCH, "/", {"payload": b"[{}", "content_format": SENML_JSON}, C.BAD_REQUEST),
    (C.FETCH, "/", {"payload": b"x", "content_format": 50}, C.UNSUPPORTED_CONTENT_FORMAT),
    (C.iPATCH, "/", {"payload": b"x", "content_format": TLV}, C.UNSUPPORTED_CONTENT_FORMAT),
])
async def test_malformed_requests(peer: AiocoapLwM2MServer, client: LwM2MClient,
                                  method: object, path: str, kwargs: dict[str, object],
                                  code: object) -> None:
    resp = await peer.request(method, path, **kwargs)
    assert resp.code == code, resp.payload
    assert resp.payload  # a diagnostic says what was wrong
    assert resp.opt.content_format in (None, TEXT)


async def test_requests_from_strangers_are_refused(client: LwM2MClient) -> None:
    import aiocoap

    ctx = await aiocoap.Context.create_client_context()
    try:
        msg = aiocoap.Message(code=C.GET, uri=f"coap://[::1]:{client.port}/3/0/2")
        resp = await ctx.request(msg).response
        assert resp.code == C.UNAUTHORIZED
    finally:
        await ctx.shutdown()


async def test_send_reaches_the_peer(peer: AiocoapLwM2MServer, client: LwM2MClient) -> None:
    await client.send(["/3303/0/5700"], format=SENML_JSON)
    sent = peer.rd.sends[-1]
    assert sent.opt.content_format == SENML_JSON
    records = json.loads(sent.payload)
    assert senml_values(records, "bn", "n", "v") == {"/3303/0/5700": 20.0}
    assert isinstance(records[0].get("bt"), int | float)  # the values carry a time
