"""Create without an instance id (LwM2M 1.1): the client picks the lowest free id and says
which in Location-Path. Hand-built requests from aiocoap (no aiolwm2m code on that side),
then our server against our client."""

from __future__ import annotations

import json

import cbor2
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.client import LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath
from aiolwm2m.server import LwM2MServer

from .aiocoap_server import AiocoapLwM2MServer
from .conftest import ClientFactory

CF = ContentFormat

# Each sets 5700 (Sensor Value, Float) of a new 3303 instance, with no instance level.
RAW_CREATES = [
    (CF.TLV, bytes.fromhex("e4164441ac0000"), 21.5),  # a resource TLV at the top level
    (CF.SENML_JSON, b'[{"n":"/3303/5700","v":22.5}]', 22.5),
    (CF.SENML_CBOR, cbor2.dumps([{0: "/3303/5700", 2: 23.5}]), 23.5),
    (CF.LWM2M_CBOR, cbor2.dumps({3303: {5700: 24.5}}), 24.5),
]


async def test_raw_creates_get_the_lowest_free_id(peer: AiocoapLwM2MServer,
                                                  client: LwM2MClient) -> None:
    for expected_iid, (fmt, payload, value) in enumerate(RAW_CREATES, start=1):
        resp = await peer.request(C.POST, "/3303", payload=payload, content_format=fmt)
        assert resp.code == C.CREATED, (fmt, resp.payload)
        assert list(resp.opt.location_path) == ["3303", str(expected_iid)]
        assert client.instance(3303, expected_iid).get(5700) == value
    assert (await peer.request(C.DELETE, "/3303/2")).code == C.DELETED
    resp = await peer.request(C.POST, "/3303", payload=RAW_CREATES[0][1], content_format=CF.TLV)
    assert list(resp.opt.location_path) == ["3303", "2"]  # the hole is the lowest free id
    # Naming the instance still works, and an instance that exists is still refused.
    named = json.dumps([{"n": "/3303/9/5700", "v": 1.0}]).encode()
    resp = await peer.request(C.POST, "/3303", payload=named, content_format=CF.SENML_JSON)
    assert resp.code == C.CREATED and list(resp.opt.location_path) == ["3303", "9"]
    resp = await peer.request(C.POST, "/3303", payload=named, content_format=CF.SENML_JSON)
    assert resp.code == C.BAD_REQUEST


@pytest.mark.parametrize("fmt", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR])
async def test_server_create_lets_the_client_pick(server: LwM2MServer,
                                                  make_client: ClientFactory,
                                                  fmt: int) -> None:
    client = await make_client(server_port=server.port)
    first = await server.create("dev-1", "/3303", {5700: 4.5}, format=fmt)
    assert first.code == Code.CREATED, first.diagnostic
    assert first.location == LwM2MPath(3303, 1) and first.instance_id == 1
    second = await server.create("dev-1", "/3303", {5700: 5.5}, format=fmt)
    assert second.instance_id == 2
    assert client.instance(3303, 2).get(5700) == 5.5
    # An explicit id still names the instance.
    named = await server.create("dev-1", "/3303", {5700: 6.5}, instance_id=7, format=fmt)
    assert named.instance_id == 7 and client.instance(3303, 7).get(5700) == 6.5
