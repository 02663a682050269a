"""End devices through the REST API: listed under their gateway, operated on at
``/api/clients/{gateway}/devices/{prefix}/...``, named in events and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from aiolwm2m.gateway import LwM2MGateway
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..web.sse_client import SseReader
from .conftest import GatewayFactory, eventually

TOKEN = "gateway-test-token"


@dataclass
class Web:
    server: LwM2MServer
    web: WebServer
    http: httpx.AsyncClient


@pytest.fixture
async def web() -> AsyncIterator[Web]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    site = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await site.start()
    http = httpx.AsyncClient(base_url=site.url, timeout=20,
                             headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield Web(server, site, http)
    finally:
        await http.aclose()
        await site.stop()
        await server.stop()


async def test_fifty_end_devices_through_rest(web: Web, make_gateway: GatewayFactory) -> None:
    sse = SseReader(web.web.url, TOKEN)
    await sse.open()
    gateway: LwM2MGateway = await make_gateway(web.server.port, end_devices=50)
    await eventually(lambda: len(web.server.end_devices) == 50)
    http = web.http
    regs = (await http.get("/api/registrations")).json()["items"]
    assert [(r["endpoint"], r["end_devices"]) for r in regs] == [("gw-1", 50)]
    page = (await http.get("/api/registrations/gw-1/devices", params={"limit": 1000})).json()
    assert page["total"] == 50
    dev7 = next(d for d in page["items"] if d["prefix"] == "dev7")
    assert (dev7["endpoint"], dev7["gateway"], dev7["device_id"]) == (
        "gw-1/dev7", "gw-1", "urn:dev:ops:gw-1-7")
    assert dev7["address"] == regs[0]["address"]
    one = (await http.get("/api/registrations/gw-1/devices/dev7")).json()
    assert one["root_path"] == "/dev7/" and one["end_devices"] is None
    objects = (await http.get("/api/registrations/gw-1/devices/dev7/objects")).json()
    assert {o["id"]: o["name"] for o in objects} == {3: "Device", 3303: "Temperature"}
    # Every end device read through REST, each with its own value.
    for i in range(50):
        body = (await http.get(f"/api/clients/gw-1/devices/dev{i}/read",
                               params={"path": "/3303/0/5700"})).json()
        assert body["code"] == "2.05", body
        assert body["values"][0]["value"] == round(20.0 + i / 10, 1)
        assert body["endpoint"] == f"gw-1/dev{i}"
    write = await http.post("/api/clients/gw-1/devices/dev3/write",
                            json={"path": "/3303/0/5750", "value": "attic"})
    assert write.json()["code"] == "2.04"
    assert gateway.end_device("dev3").tree.get(3303, 0).get(5750) == "attic"
    composite = (await http.post("/api/clients/gw-1/devices/dev3/read-composite",
                                 json={"paths": ["/3303/0/5750", "/3/0/2"]})).json()
    assert {v["path"]: v["value"] for v in composite["values"]} == {
        "/3303/0/5750": "attic", "/3/0/2": "gw-1-3"}
    observed = (await http.post("/api/clients/gw-1/devices/dev5/observe",
                                json={"path": "/3303/0/5700"})).json()
    assert observed["code"] == "2.05"
    listed = (await http.get("/api/clients/gw-1/devices/dev5/observations")).json()
    assert [o["paths"] for o in listed] == [["/3303/0/5700"]]
    gateway.end_device("dev5").tree.get(3303, 0).measure(55.5)
    # Events name the end device and its gateway.
    await asyncio.wait_for(sse.read_until(lambda r: any(
        name == "notification" for name, _ in r.events)), 10)
    added = [data for name, data in sse.events if name == "end-device-added"]
    assert len(added) == 50 and {a["gateway"] for a in added} == {"gw-1"}
    assert {a["prefix"] for a in added} == {f"dev{i}" for i in range(50)}
    note = next(data for name, data in sse.events if name == "notification")
    assert (note["endpoint"], note["gateway"], note["prefix"]) == ("gw-1/dev5", "gw-1",
                                                                   "dev5")
    assert note["values"][0]["value"] == 55.5
    metrics = (await http.get("/metrics")).text
    assert "lwm2m_end_devices 50.0" in metrics
    assert 'lwm2m_gateway_end_devices{gateway="gw-1"} 50.0' in metrics
    assert 'lwm2m_registration_events_total{event="end-device-added"} 50.0' in metrics
    await sse.close()


async def test_bad_end_device_addresses(web: Web, make_gateway: GatewayFactory) -> None:
    await make_gateway(web.server.port, end_devices=1)
    await eventually(lambda: len(web.server.end_devices) == 1)
    http = web.http
    cases = [
        ("/api/clients/gw-1/devices/nope/read?path=/3/0", 404, "no registration"),
        ("/api/clients/nobody/devices/dev0/read?path=/3/0", 404, "no registration"),
        ("/api/clients/gw-1/devices/3303/read?path=/3/0", 400, "clashes with an object id"),
        ("/api/clients/gw-1/devices/a%20b/read?path=/3/0", 400, "characters other than"),
        ("/api/clients/gw-1/devices/dev0/read?path=/dev0/3/0", 400, "invalid path"),
        ("/api/registrations/gw-1/devices/nope", 404, "no registration"),
        ("/api/registrations/nobody/devices", 404, "no registration"),
    ]
    for url, status, text in cases:
        response = await http.get(url)
        assert response.status_code == status, (url, response.text)
        assert text in response.json()["detail"], (url, response.text)
    ok = await http.get("/api/clients/gw-1/devices/dev0/read", params={"path": "/3/0/2"})
    assert ok.json()["values"][0]["value"] == "gw-1-0"
