"""The REST API over real HTTP, against a real server and an aiocoap device."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from .api_fixtures import TOKEN, Stack, stack


@pytest.fixture
async def s() -> AsyncIterator[Stack]:
    async for st in stack(awake_time=0.5):
        assert (await st.device.register(st.coap_uri)).code.is_successful()
        yield st


async def test_authentication(s: Stack) -> None:
    async with httpx.AsyncClient(base_url=s.web.url) as anon:
        r = await anon.get("/api/registrations")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await anon.get("/api/registrations", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "invalid" in r.json()["detail"]
        r = await anon.get("/api/registrations", params={"access_token": TOKEN})
        assert r.status_code == 200
        assert (await anon.get("/metrics")).status_code == 200
        assert (await anon.get("/openapi.json")).status_code == 200


async def test_registrations(s: Stack) -> None:
    r = await s.http.get("/api/registrations")
    page = r.json()
    assert page["total"] == 1 and page["items"][0]["endpoint"] == "dev-1"
    item = page["items"][0]
    assert item["lwm2m_version"] == "1.1" and item["binding"] == "U" and item["awake"]
    assert {"path": "/3303/0", "version": None} in item["objects"]
    assert (await s.http.get("/api/registrations", params={"endpoint": "dev*"})).json()[
        "total"] == 1
    assert (await s.http.get("/api/registrations", params={"endpoint": "x*"})).json()[
        "total"] == 0
    assert (await s.http.get("/api/registrations", params={"queue_mode": True})).json()[
        "total"] == 0
    r = await s.http.get("/api/registrations", params={"limit": 0})
    assert r.status_code == 422
    assert (await s.http.get("/api/registrations/dev-1")).json()["id"] == item["id"]
    r = await s.http.get("/api/registrations/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    objects = (await s.http.get("/api/registrations/dev-1/objects")).json()
    temp = next(o for o in objects if o["id"] == 3303)
    assert temp["name"] == "Temperature" and temp["instances"] == [0]
    sensor = next(r for r in temp["resources"] if r["id"] == 5700)
    assert sensor["name"] == "Sensor Value" and sensor["operations"] == "R"
    assert sensor["type"] == "Float"


async def test_read_write_execute(s: Stack) -> None:
    r = await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0"})
    body = r.json()
    assert r.status_code == 200 and body["code"] == "2.05" and body["success"]
    assert body["content"]["0"] == "aiocoap-works"
    # The device lists </3/0> without ver=, so Device 1.0 (whose unit is "%") describes it.
    assert {"path": "/3/0/9", "name": "Battery Level", "type": "Integer", "units": "%",
            "value": 87} in body["values"]
    r = await s.http.get("/api/clients/dev-1/read",
                         params={"path": "/3/0/7", "format": "senml-json"})
    assert r.json()["content"] == {"0": 3800, "1": 5000} and r.json()["format"] == "senml-json"
    r = await s.http.post("/api/clients/dev-1/write",
                          json={"path": "/3/0/14", "value": "+04:00"})
    assert r.json()["code"] == "2.04"
    assert s.device.state.objects[3][0].resources[14].value == "+04:00"  # type: ignore[union-attr]
    r = await s.http.post("/api/clients/dev-1/write",
                          json={"path": "/3303/0", "value": {"5700": 1.25}, "mode": "update"})
    assert r.json()["code"] == "2.04"
    r = await s.http.post("/api/clients/dev-1/execute", json={"path": "/3/0/4"})
    assert r.json()["code"] == "2.04" and s.device.state.executed == [("/3/0/4", "")]
    r = await s.http.get("/api/clients/dev-1/discover", params={"path": "/3/0"})
    links = {link["path"]: link for link in r.json()["links"]}
    assert links["/3/0/7"]["dim"] == 2


async def test_bad_input(s: Stack) -> None:
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("get", "/api/clients/nobody/read", {"params": {"path": "/3/0"}}, 404, "nobody"),
        ("get", "/api/clients/dev-1/read", {"params": {"path": "/3/x"}}, 400, "invalid path"),
        ("get", "/api/clients/dev-1/read", {"params": {"path": "/3/0/1/2/3"}}, 400,
         "invalid path"),
        ("get", "/api/clients/dev-1/read", {"params": {"path": "/3", "format": "bogus"}}, 400,
         "unknown content format"),
        ("post", "/api/clients/dev-1/write", {"json": {"path": "/3/0/9", "value": "high"}},
         400, "Integer"),
        ("post", "/api/clients/dev-1/write", {"json": {"path": "/", "value": 1}}, 400, "root"),
        ("post", "/api/clients/dev-1/execute", {"json": {"path": "/3/0"}}, 400, "resource"),
        ("post", "/api/clients/dev-1/create", {"json": {"path": "/3/0", "values": {}}}, 400,
         "object path"),
        ("post", "/api/clients/dev-1/write-attributes",
         {"json": {"path": "/3/0/9", "set": {"pmin": -1}}}, 400, "pmin"),
        ("post", "/api/clients/dev-1/cancel-observation", {"json": {}}, 400, "path"),
    ]
    for method, url, kw, status, needle in cases:
        r = await getattr(s.http, method)(url, **kw)
        assert r.status_code == status, (url, kw, r.text)
        assert needle in r.json()["detail"], (url, r.json())
    r = await s.http.post("/api/clients/dev-1/write", json={"value": 1})
    assert r.status_code == 422
    # The device answering with an error is a successful API call carrying that code.
    r = await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0/77"})
    assert r.status_code == 200 and r.json()["code"] == "4.04" and not r.json()["success"]


async def test_create_delete_attributes_composite(s: Stack) -> None:
    r = await s.http.post("/api/clients/dev-1/create",
                          json={"path": "/3303", "instance_id": 4,
                                "values": {"5700": 19.5, "5701": "Cel"}})
    assert r.json()["code"] == "2.01" and r.json()["location"] == "/3303/4"
    r = await s.http.post("/api/clients/dev-1/delete", json={"path": "/3303/4"})
    assert r.json()["code"] == "2.02"
    r = await s.http.post("/api/clients/dev-1/write-attributes",
                          json={"path": "/3303/0/5700", "set": {"pmin": 1, "gt": 30.5},
                                "unset": ["lt"]})
    assert r.json()["code"] == "2.04"
    assert sorted(s.device.state.attributes["/3303/0/5700"]) == ["gt=30.5", "lt", "pmin=1"]
    r = await s.http.post("/api/clients/dev-1/read-composite",
                          json={"paths": ["/3/0/9", "/3303/0/5700"], "format": "senml-json"})
    values = {v["path"]: v["value"] for v in r.json()["values"]}
    assert values == {"/3/0/9": 87, "/3303/0/5700": 21.5}
    r = await s.http.post("/api/clients/dev-1/write-composite",
                          json={"values": {"/3/0/14": "Z", "/3303/0/5700": 2.5}})
    assert r.json()["code"] == "2.04"


async def read_events(s: Stack, lines: asyncio.Queue[dict[str, Any]]) -> None:
    async with s.http.stream("GET", "/api/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                assert data["type"] == name
                lines.put_nowait(data)


async def next_event(q: asyncio.Queue[dict[str, Any]], kind: str) -> dict[str, Any]:
    while True:
        ev = await asyncio.wait_for(q.get(), 5)
        if ev["type"] == kind:
            return ev


async def test_observe_and_events(s: Stack) -> None:
    q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    reader = asyncio.create_task(read_events(s, q))
    await asyncio.sleep(0.2)
    try:
        r = await s.http.post("/api/clients/dev-1/observe", json={"path": "/3303/0/5700"})
        assert r.json()["code"] == "2.05" and r.json()["token"]
        obs = (await s.http.get("/api/clients/dev-1/observations")).json()
        assert obs[0]["paths"] == ["/3303/0/5700"]
        s.device.set_value("/3303/0/5700", 33.0)
        ev = await next_event(q, "notification")
        assert ev["endpoint"] == "dev-1" and ev["values"][0]["value"] == 33.0
        assert ev["values"][0]["name"] == "Sensor Value"
        r = await s.http.post("/api/clients/dev-1/cancel-observation",
                              json={"path": "/3303/0/5700"})
        assert r.json() == {"cancelled": True}
        await s.device.update("lt=500")
        ev = await next_event(q, "updated")
        assert ev["lifetime"] == 500
        await s.device.send(["/3/0/9"])
        ev = await next_event(q, "send")
        assert ev["groups"][0]["values"][0]["path"] == "/3/0/9"
        await s.device.deregister()
        assert (await next_event(q, "deregistered"))["endpoint"] == "dev-1"
    finally:
        reader.cancel()


async def test_queue_mode_202_and_result(s: Stack) -> None:
    await s.device.deregister()
    await s.device.register(s.coap_uri, queue=True)
    await asyncio.sleep(1.3)  # awake_time is 0.5 s and the timers tick every second at most
    r = await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0/9"})
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["state"] == "pending" and queued["operation"]["op"] == "read"
    r = await s.http.get(f"/api/requests/{queued['request_id']}")
    assert r.json()["state"] == "pending"
    await s.device.update()
    for _ in range(50):
        r = await s.http.get(f"/api/requests/{queued['request_id']}")
        if r.json()["state"] == "done":
            break
        await asyncio.sleep(0.05)
    assert r.json()["state"] == "done" and r.json()["result"]["code"] == "2.05"
    assert (await s.http.get("/api/requests/nope")).status_code == 404


async def test_device_gone_is_504(s: Stack) -> None:
    await s.device.stop()
    r = await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0", "timeout": 0.5})
    assert r.status_code == 504 and "did not answer" in r.json()["detail"]


async def test_security_crud(s: Stack) -> None:
    r = await s.http.put("/api/security/dev-9",
                         json={"psk_identity": "dev-9", "psk_key": "00112233445566778899"})
    assert r.status_code == 200 and r.json()["mode"] == "psk" and "psk_key" not in r.json()
    assert s.server.stores.security.find_psk(b"dev-9") is not None
    r = await s.http.put("/api/security/other", json={"psk_identity": "dev-9",
                                                       "psk_key": "00"})
    assert r.status_code == 409
    r = await s.http.put("/api/security/x", json={"psk_identity": "x", "psk_key": "zz"})
    assert r.status_code == 400 and "hex" in r.json()["detail"]
    r = await s.http.put("/api/security/x", json={"x509_identity": "CN=x",
                                                   "psk_identity": "x", "psk_key": "00"})
    assert r.status_code == 400
    assert [i["endpoint"] for i in (await s.http.get("/api/security")).json()] == ["dev-9"]
    assert (await s.http.get("/api/security/dev-9")).json()["psk_identity"] == "dev-9"
    assert (await s.http.delete("/api/security/dev-9")).status_code == 204
    assert (await s.http.delete("/api/security/dev-9")).status_code == 404
    assert (await s.http.get("/api/security/dev-9")).status_code == 404


async def test_metrics(s: Stack) -> None:
    await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0/9"})
    text = (await s.http.get("/metrics")).text
    assert "lwm2m_registered_devices 1.0" in text
    assert 'lwm2m_requests_total{code="2.05",operation="read"} 1.0' in text
    assert 'lwm2m_request_duration_seconds_count{operation="read"} 1.0' in text
    assert 'lwm2m_registration_events_total{event="registered"} 1.0' in text
    assert "lwm2m_queue_depth 0.0" in text
    # Each (operation, code) keeps its own series as requests repeat.
    for path in ("/3/0/9", "/3/0/77", "/3/0/9"):
        await s.http.get("/api/clients/dev-1/read", params={"path": path})
    text = (await s.http.get("/metrics")).text
    assert 'lwm2m_requests_total{code="2.05",operation="read"} 3.0' in text
    assert 'lwm2m_requests_total{code="4.04",operation="read"} 1.0' in text
    assert 'lwm2m_request_duration_seconds_count{operation="read"} 4.0' in text


async def test_docs_pages(s: Stack) -> None:
    spec = (await s.http.get("/openapi.json")).json()
    assert "/api/clients/{endpoint}/read" in spec["paths"]
    page = (await s.http.get("/api-docs")).text
    assert "/api/clients/{endpoint}/write" in page and "<table>" in page
