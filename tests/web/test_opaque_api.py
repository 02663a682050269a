"""Opaque values through the REST API: one JSON form, {"base64": ...}, in reads, events and
writes (also {"hex": ...} in writes), and large values (a 300 KB firmware package) sent to
our own client block-wise and arriving intact, from JSON and from a raw upload."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aiolwm2m.client import ClientConfig, FirmwareUpdateInstance, LwM2MClient
from aiolwm2m.client.objects.firmware import DOWNLOADED
from aiolwm2m.lwm2m import LwM2MPath, MultipleResource, ObjectInstance, ResourceType
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .api_fixtures import Stack, stack


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def s() -> AsyncIterator[Stack]:
    async for st in stack():
        # Binary App Data Container: a multiple Opaque resource, readable and writable.
        st.device.state.objects[19] = {0: ObjectInstance.from_resources(0, [
            MultipleResource(0, ResourceType.OPAQUE, {0: b"AN", 1: b"\x00\xff"})])}
        assert (await st.device.register(st.coap_uri)).code.is_successful()
        yield st


def device_data(s: Stack) -> dict[int, bytes]:
    res = s.device.state.objects[19][0].resources[0]
    assert isinstance(res, MultipleResource)
    return dict(res.instances)  # type: ignore[arg-type]


async def test_reads_render_opaque_as_base64(s: Stack) -> None:
    r = await s.http.get("/api/clients/dev-1/read", params={"path": "/19/0"})
    body = r.json()
    assert body["code"] == "2.05", body
    assert body["content"] == {"0": {"0": {"base64": "QU4="}, "1": {"base64": "AP8="}}}
    assert {"path": "/19/0/0/0", "name": "Data", "type": "Opaque", "units": None,
            "value": {"base64": "QU4="}} in body["values"]
    r = await s.http.post("/api/clients/dev-1/read-composite",
                          json={"paths": ["/19/0/0/1", "/3/0/9"]})
    values = {v["path"]: v["value"] for v in r.json()["values"]}
    assert values == {"/19/0/0/1": {"base64": "AP8="}, "/3/0/9": 87}


async def test_write_create_and_composite_take_the_same_form(s: Stack) -> None:
    # The issue's own request, now with the documented encoding (the "414e" of the issue
    # is refused below, with a message saying what to send).
    r = await s.http.post("/api/clients/dev-1/write",
                          json={"path": "/19/0/0/0", "value": {"base64": "QU4="}})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    assert device_data(s)[0] == b"AN"
    r = await s.http.post("/api/clients/dev-1/write",
                          json={"path": "/19/0/0", "value": {"0": {"hex": "0102"},
                                                             "5": {"base64": "_-8"}}})
    assert r.json()["code"] == "2.04", r.text
    assert device_data(s) == {0: b"\x01\x02", 5: b"\xff\xef"}
    r = await s.http.post("/api/clients/dev-1/write-composite",
                          json={"values": {"/19/0/0/7": {"base64": b64(b"\x07" * 40)},
                                           "/3/0/14": "+03:00"}})
    assert r.json()["code"] == "2.04", r.text
    assert device_data(s)[7] == b"\x07" * 40
    r = await s.http.post("/api/clients/dev-1/create",
                          json={"path": "/19", "instance_id": 3,
                                "values": {"0": {"0": {"base64": b64(b"new")}}}})
    assert r.json()["code"] == "2.01", r.text
    created = s.device.state.objects[19][3].resources[0]
    assert isinstance(created, MultipleResource) and created.instances == {0: b"new"}
    # What a read returns can be written back as it is.
    back = (await s.http.get("/api/clients/dev-1/read", params={"path": "/19/3"})).json()
    r = await s.http.post("/api/clients/dev-1/write",
                          json={"path": "/19/0", "value": back["content"]})
    assert r.json()["code"] == "2.04" and device_data(s) == {0: b"new"}


async def test_undecodable_or_bare_opaque_values_get_400(s: Stack) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("write", {"path": "/19/0/0/0", "value": "414e"}, '{"base64": "..."}'),
        ("write", {"path": "/19/0/0", "value": {"0": "QU4="}}, "/19/0/0/0 is Opaque"),
        ("write", {"path": "/19/0/0/0", "value": {"base64": "QU4=!"}}, "not valid base64"),
        ("write", {"path": "/19/0/0/0", "value": {"hex": "4"}}, "not valid hex"),
        ("write", {"path": "/19/0/0/0", "value": {"base64": 5}}, "must be a string"),
        ("write", {"path": "/19/0/0/0", "value": {"base64": "QU4=", "hex": "41"}},
         "no other member"),
        ("create", {"path": "/19", "values": {"0": {"0": "QU4="}}}, "is Opaque"),
        ("write-composite", {"values": {"/19/0/0/0": "QU4="}}, "is Opaque"),
        # Bytes where the model says String.
        ("write", {"path": "/3/0/14", "value": {"base64": "QU4="}}, "String"),
    ]
    for op, body, needle in cases:
        r = await s.http.post(f"/api/clients/dev-1/{op}", json=body)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["detail"], (body, r.json())
    assert device_data(s) == {0: b"AN", 1: b"\x00\xff"}


async def test_notification_events_carry_base64(s: Stack) -> None:
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def read_events() -> None:
        async with s.http.stream("GET", "/api/events") as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    lines.put_nowait(json.loads(line[6:]))

    reader = asyncio.create_task(read_events())
    try:
        await asyncio.sleep(0.2)
        r = await s.http.post("/api/clients/dev-1/observe", json={"path": "/19/0/0"})
        assert r.json()["content"] == {"0": {"base64": "QU4="}, "1": {"base64": "AP8="}}
        s.device.state.objects[19][0] = ObjectInstance.from_resources(0, [
            MultipleResource(0, ResourceType.OPAQUE, {0: b"\x10\x20"})])
        s.device.notify(LwM2MPath.parse("/19/0/0"))
        while True:
            ev = await asyncio.wait_for(lines.get(), 5)
            if ev["type"] == "notification":
                break
        assert ev["values"][0]["value"] == {"base64": "ECA="}
    finally:
        reader.cancel()


async def test_openapi_documents_the_opaque_form(s: Stack) -> None:
    spec = (await s.http.get("/openapi.json")).json()
    opaque = spec["components"]["schemas"]["OpaqueValue"]
    assert opaque["required"] == ["base64"] and opaque["additionalProperties"] is False
    write = spec["components"]["schemas"]["WriteBody"]["properties"]["value"]
    assert {"$ref": "#/components/schemas/OpaqueValue"} in write["anyOf"]
    upload = spec["paths"]["/api/clients/{endpoint}/write-opaque"]["post"]
    assert "application/octet-stream" in upload["requestBody"]["content"]


# -- large values, block-wise, to our own client ----------------------------------------------


TOKEN = "opaque-token"


@pytest.fixture
async def fw() -> AsyncIterator[tuple[httpx.AsyncClient, FirmwareUpdateInstance, LwM2MServer]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    firmware = FirmwareUpdateInstance(0)
    client = LwM2MClient(ClientConfig.development("fw-1", f"coap://[::1]:{server.port}",
                                                  host="::1"), objects=[firmware])
    await client.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=60)
    try:
        await client.wait_registered(10)
        yield http, firmware, server
    finally:
        await http.aclose()
        await client.stop(deregister=False)
        await web.stop()
        await server.stop()


async def firmware_state(http: httpx.AsyncClient) -> int:
    r = await http.get("/api/clients/fw-1/read", params={"path": "/5/0/3"})
    return int(r.json()["content"])


async def test_large_package_goes_block_wise_and_arrives_intact(
        fw: tuple[httpx.AsyncClient, FirmwareUpdateInstance, LwM2MServer]) -> None:
    http, firmware, _ = fw
    package = os.urandom(300 * 1024)  # far above one UDP datagram: only Block1 carries it
    r = await http.post("/api/clients/fw-1/write",
                        json={"path": "/5/0/0", "value": {"base64": b64(package)}})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    assert firmware.image == package
    assert await firmware_state(http) == DOWNLOADED


async def test_raw_upload_of_a_large_package(
        fw: tuple[httpx.AsyncClient, FirmwareUpdateInstance, LwM2MServer]) -> None:
    http, firmware, _ = fw
    package = os.urandom(300 * 1024)

    async def chunks() -> AsyncIterator[bytes]:  # chunked transfer: no Content-Length
        for i in range(0, len(package), 64 * 1024):
            yield package[i:i + 64 * 1024]

    r = await http.post("/api/clients/fw-1/write-opaque", params={"path": "/5/0/0"},
                        content=chunks(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    assert firmware.image == package
    # Refused before the body is read: not an Opaque resource, not a resource path.
    r = await http.post("/api/clients/fw-1/write-opaque", params={"path": "/5/0/1"},
                        content=b"x")
    assert r.status_code == 400 and "String, not Opaque" in r.json()["detail"]
    r = await http.post("/api/clients/fw-1/write-opaque", params={"path": "/5/0"},
                        content=b"x")
    assert r.status_code == 400
    r = await http.post("/api/clients/nobody/write-opaque", params={"path": "/5/0/0"},
                        content=b"x")
    assert r.status_code == 404
