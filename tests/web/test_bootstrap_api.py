"""``/api/bootstrap`` against a live Bootstrap-Server, and without one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .api_fixtures import TOKEN

CONFIG = {
    "security": [{"instance_id": 1, "server_uri": "coaps://[::1]:5684", "security_mode": "psk",
                  "public_key_or_identity": "text:dev-7", "secret_key": "00112233",
                  "short_server_id": 1}],
    "servers": [{"instance_id": 0, "short_server_id": 1, "lifetime": 300, "binding": "U"}],
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory"))
    await server.start()
    bs = BootstrapServer(BootstrapServerConfig(host="::1", port=0, store="memory"))
    await bs.start()
    with_bs = WebServer(create_app(server, [TOKEN], bs), "127.0.0.1", 0)
    without = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await with_bs.start()
    await without.start()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    a = httpx.AsyncClient(base_url=with_bs.url, headers=headers)
    b = httpx.AsyncClient(base_url=without.url, headers=headers)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()
        await with_bs.stop()
        await without.stop()
        await bs.stop()
        await server.stop()


async def test_crud(api: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    c, _ = api
    assert (await c.get("/api/bootstrap")).json() == []
    r = await c.put("/api/bootstrap/dev-7", json=CONFIG)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["endpoint"] == "dev-7"
    assert body["config"]["security"][0]["secret_key"] == "(hidden)"
    assert body["config"]["security"][0]["server_uri"] == "coaps://[::1]:5684"
    # The device's own bootstrap key is a secret too.
    with_creds = {**CONFIG, "bootstrap_credentials": {"psk_identity": "6465762d37",
                                                      "psk_key": "a1a2a3a4a5a6a7a8"}}
    r = await c.put("/api/bootstrap/dev-7", json=with_creds)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["bootstrap_credentials"]["psk_key"] == "(hidden)"
    assert "a1a2a3a4" not in (await c.get("/api/bootstrap")).text
    listed = (await c.get("/api/bootstrap")).json()
    assert [i["endpoint"] for i in listed] == ["dev-7"]
    assert (await c.get("/api/bootstrap/dev-7")).json()["config"]["servers"][0]["lifetime"] == 300
    assert (await c.get("/api/bootstrap/dev-7/sessions")).json() == []
    assert (await c.delete("/api/bootstrap/dev-7")).status_code == 204
    assert (await c.delete("/api/bootstrap/dev-7")).status_code == 404
    assert (await c.get("/api/bootstrap/dev-7")).status_code == 404


async def test_invalid_configuration(api: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    c, _ = api
    bad = {"security": [{"instance_id": 1, "server_uri": "coap://x", "security_mode": "magic",
                         "short_server_id": 1}]}
    r = await c.put("/api/bootstrap/dev-8", json=bad)
    assert r.status_code == 400 and "security_mode" in r.json()["detail"]
    r = await c.put("/api/bootstrap/dev-8", json={"colour": "blue"})
    assert r.status_code == 400 and "colour" in r.json()["detail"]


async def test_without_bootstrap_server(api: tuple[httpx.AsyncClient, httpx.AsyncClient]
                                        ) -> None:
    _, c = api
    r = await c.get("/api/bootstrap")
    assert r.status_code == 404 and "no bootstrap server" in r.json()["detail"]
