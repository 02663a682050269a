"""``/api/groups`` and ``/api/group-runs`` on real sockets with simulated devices: group
definitions, operations on every member, the per-member result stream (SSE), and bad
input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiolwm2m.groups.limits import GroupLimits
from aiolwm2m.server import LwM2MServer
from aiolwm2m.simulator import Fleet
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..fake_clock import FakeClock
from ..groups.conftest import fleet_of, group_config

TOKEN = "groups-token-0123456789"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, httpx.AsyncClient, Fleet]]:
    server = LwM2MServer(group_config(tmp_path, FakeClock(), store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    fleet = await fleet_of(server, 10)
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=30)
    try:
        yield server, http, fleet
    finally:
        await http.aclose()
        await fleet.stop()
        await web.stop()
        await server.stop()


async def sse(http: httpx.AsyncClient, path: str, **params: Any
              ) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a group run's stream, until it ends."""
    events: list[tuple[str, dict[str, Any]]] = []
    async with http.stream("GET", path, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


async def test_definitions_and_a_group_read_streamed(
        api: tuple[LwM2MServer, httpx.AsyncClient, Fleet]) -> None:
    _, http, _ = api
    r = await http.put("/api/groups/meters", json={"filter": "ep=meter-*",
                                                   "members": ["absent"],
                                                   "description": "every meter"})
    assert r.status_code == 200, r.text
    assert r.json() | {"created_at": 0, "updated_at": 0} == {
        "name": "meters", "members": ["absent"], "filter": "ep=meter-*", "rd_group": None,
        "description": "every meter", "dynamic": True, "created_at": 0, "updated_at": 0}
    assert [g["name"] for g in (await http.get("/api/groups")).json()] == ["meters"]
    members = (await http.get("/api/groups/meters/members")).json()
    assert members["endpoints"][0] == "absent" and len(members["endpoints"]) == 11
    assert (members["registered"], members["truncated"]) == (10, False)

    r = await http.post("/api/groups/meters/read", json={"path": "/3/0/2", "concurrency": 3})
    assert r.status_code == 202, r.text
    run = r.json()
    assert (run["group"], run["operation"], run["path"], run["members"],
            run["concurrency"]) == ("meters", "read", "/3/0/2", 11, 3)
    events = await sse(http, f"/api/group-runs/{run['id']}/events")
    results = [data for name, data in events if name == "result"]
    assert [name for name, _ in events][-1] == "done" and len(results) == 11
    done = events[-1][1]
    assert done["state"] == "done" and done["summary"] == {"ok": 10, "not-registered": 1}
    by_ep = {r["endpoint"]: r for r in results}
    assert by_ep["absent"]["status"] == "not-registered" and by_ep["absent"]["result"] is None
    meter = by_ep["meter-000004"]
    assert meter["status"] == "ok" and meter["code"] == "2.05" and meter["final"]
    assert meter["result"]["content"] == "meter-000004"
    # Resumed after 6 results; and the whole run in one answer.
    later = await sse(http, f"/api/group-runs/{run['id']}/events", **{"from": "6"})
    assert [d["endpoint"] for n, d in later if n == "result"] == [
        r["endpoint"] for r in results[6:]]
    whole = (await http.get(f"/api/group-runs/{run['id']}")).json()
    assert [r["endpoint"] for r in whole["results"]] == [r["endpoint"] for r in results]
    assert whole["run"]["summary"] == done["summary"]
    page = (await http.get(f"/api/group-runs/{run['id']}",
                           params={"offset": 2, "limit": 3})).json()
    assert len(page["results"]) == 3
    assert (await http.get("/api/group-runs")).json()[0]["id"] == run["id"]

    assert (await http.delete("/api/groups/meters")).status_code == 204
    assert (await http.get("/api/groups/meters")).status_code == 404
    assert (await http.delete("/api/groups/meters")).status_code == 404


async def run_to_end(http: httpx.AsyncClient, path: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
    r = await http.post(path, json=body)
    assert r.status_code == 202, r.text
    events = await sse(http, f"/api/group-runs/{r.json()['id']}/events")
    return events[-1][1]


async def test_write_execute_attributes_observe(
        api: tuple[LwM2MServer, httpx.AsyncClient, Fleet]) -> None:
    server, http, _ = api
    assert (await http.put("/api/groups/g", json={"filter": "ep=meter-00000*"})
            ).status_code == 200
    done = await run_to_end(http, "/api/groups/g/write",
                            {"path": "/3/0/14", "value": "+05:00"})
    assert done["operation"] == "write" and done["summary"] == {"ok": 10}
    values = {(await server.read(ep, "/3/0/14")).content.value  # type: ignore[union-attr]
              for ep in server.registrations}
    assert values == {"+05:00"}
    assert (await run_to_end(http, "/api/groups/g/execute", {"path": "/3/0/12"})
            )["summary"] == {"ok": 10}
    assert (await run_to_end(http, "/api/groups/g/write-attributes",
                             {"path": "/3303/0/5700", "set": {"pmin": 0, "pmax": 5}})
            )["summary"] == {"ok": 10}
    assert (await run_to_end(http, "/api/groups/g/observe", {"path": "/3303/0/5700"})
            )["summary"] == {"ok": 10}
    # The device refuses: each member's CoAP code comes back.
    refused = await run_to_end(http, "/api/groups/g/execute", {"path": "/3/0/77"})
    assert refused["summary"] == {"error": 10}


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("PUT", "/api/groups/has space", {"members": ["a"]}, 400, "group name"),
    ("PUT", "/api/groups/g2", {"members": ["a", "a"]}, 400, "listed twice"),
    ("PUT", "/api/groups/g2", {"filter": "ep=a&count=3"}, 400, "page and count"),
    ("PUT", "/api/groups/g2", {"filter": "=x"}, 400, "filter"),
    ("PUT", "/api/groups/g2", {"rd_group": {"ep": "x" * 64}}, 400, "rd_group.ep"),
    ("PUT", "/api/groups/g2", {"member": ["a"]}, 422, ""),
    ("POST", "/api/groups/nope/read", {"path": "/3/0"}, 404, "no group"),
    ("POST", "/api/groups/g/read", {"path": "/3/x"}, 400, "path"),
    ("POST", "/api/groups/g/read", {"path": "/3/0", "format": "nope"}, 400, ""),
    ("POST", "/api/groups/g/read", {"path": "/3/0", "concurrency": 0}, 422, ""),
    ("POST", "/api/groups/g/read", {"path": "/3/0", "concurrency": 5000}, 400, "concurrency"),
    ("POST", "/api/groups/g/execute", {"path": "/3/0"}, 400, "resource path"),
    ("POST", "/api/groups/g/write", {"path": "/", "value": 1}, 400, "root"),
    ("POST", "/api/groups/g/write-attributes", {"path": "/3/0/1"}, 400, "no attribute"),
    ("POST", "/api/groups/g/write-attributes", {"path": "/3/0/1", "unset": ["bogus"]}, 400,
     ""),
    ("GET", "/api/group-runs/nope", None, 404, "no such group run"),
    ("GET", "/api/group-runs/nope/events", None, 404, "no such group run"),
    ("DELETE", "/api/group-runs/nope", None, 404, "no such group run"),
])
async def test_bad_requests(api: tuple[LwM2MServer, httpx.AsyncClient, Fleet], method: str,
                            path: str, body: Any, status: int, says: str) -> None:
    server, http, _ = api
    assert (await http.put("/api/groups/g", json={"members": ["meter-000001"]})
            ).status_code == 200
    r = await http.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert says in json.dumps(r.json()["detail"])
    assert [g.name for g in server.groups.all()] == ["g"]
    assert not server.groups.runs


async def test_busy_is_409(api: tuple[LwM2MServer, httpx.AsyncClient, Fleet]) -> None:
    server, http, _ = api
    await http.put("/api/groups/g", json={"members": ["meter-000001"]})
    server.groups.limits = GroupLimits(max_active_runs=0)
    r = await http.post("/api/groups/g/read", json={"path": "/3/0"})
    assert r.status_code == 409 and "running" in r.json()["detail"]
