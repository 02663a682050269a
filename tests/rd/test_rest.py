"""``/api/rd``: lookups and registrations over the REST API, on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer
from tests.fake_clock import FakeClock

from .conftest import location, new_node, rd_config

TOKEN = "rd-token-0123456789"


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[LwM2MServer,
                                                                        httpx.AsyncClient]]:
    server = LwM2MServer(rd_config(tmp_path, clock, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    http = httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"},
                             timeout=20)
    try:
        yield server, http
    finally:
        await http.aclose()
        await web.stop()
        await server.stop()


async def test_lookups_and_registrations(api: tuple[LwM2MServer, httpx.AsyncClient]) -> None:
    server, http = api
    node = await new_node(server)
    base = f"coap://127.0.0.1:{node.endpoint.port}"
    try:
        loc = location(await node.ask(Code.POST, "rd", "ep=meter-1", "d=plant-1", "et=meter",
                                      payload=b'</v>;rt="power",</c>', cf=40))
        location(await node.ask(Code.POST, "rd", "ep=meter-2", "d=plant-2", "et=meter",
                                payload=b'</v>;rt="power"', cf=40))
        lw = await node.ask(Code.POST, "rd", "ep=dev-1", "lwm2m=1.1", payload=b"</3/0>", cf=40)
        assert lw.code == Code.CREATED
    finally:
        await node.close()

    r = await http.get("/api/rd/ep", params={"ep": "meter-*", "d": "plant-1"})
    assert r.status_code == 200
    (ep,) = r.json()
    assert ep == {"path": f"/{loc}", "endpoint": "meter-1", "sector": "plant-1", "base": base,
                  "endpoint_types": ["meter"], "lwm2m": False,
                  "attributes": [{"name": "ep", "value": "meter-1"},
                                 {"name": "d", "value": "plant-1"},
                                 {"name": "base", "value": base},
                                 {"name": "et", "value": "meter"}]}
    r = await http.get("/api/rd/ep", params={"et": "oma.lwm2m"})
    assert [e["endpoint"] for e in r.json()] == ["dev-1"] and r.json()[0]["lwm2m"] is True
    r = await http.get("/api/rd/res", params={"rt": "power", "count": 1, "page": 1})
    assert r.json() == [{"href": f"{base}/v", "target": "/v", "endpoint": "meter-2",
                         "registration": r.json()[0]["registration"],
                         "attributes": [{"name": "rt", "value": "power"}]}]
    for bad in ({"page": "1"}, {"count": "0"}, {"count": "100000"}):
        r = await http.get("/api/rd/res", params=bad)
        assert r.status_code in (400, 422), bad

    r = await http.get("/api/rd/registrations")
    assert [x["endpoint"] for x in r.json()] == ["meter-1", "meter-2"]
    rid = loc.split("/")[1]
    r = await http.get(f"/api/rd/registrations/{rid}")
    assert r.status_code == 200 and [link["target"] for link in r.json()["links"]] == ["/v",
                                                                                    "/c"]
    assert (await http.delete(f"/api/rd/registrations/{rid}")).status_code == 204
    assert (await http.get(f"/api/rd/registrations/{rid}")).status_code == 404
    assert (await http.delete(f"/api/rd/registrations/{rid}")).status_code == 404
    assert server.rd.get(rid) is None  # type: ignore[union-attr]
    assert (await http.get("/api/rd/ep", headers={"Authorization": "Bearer nope"})
            ).status_code == 401
