"""Last values and history over the REST API: what an aiocoap device answers, notifies and
sends is kept with its time, in memory and in SQLite (across a restart)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import httpx
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.client.config import ClientConfig
from aiolwm2m.gateway import LwM2MGateway
from aiolwm2m.gateway.simulated import simulated_end_devices
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..server.aiocoap_device import started_device
from .api_fixtures import TOKEN, Stack, stack


@pytest.fixture
async def s() -> AsyncIterator[Stack]:
    async for st in stack():
        assert (await st.device.register(st.coap_uri)).code.is_successful()
        yield st


async def values(http: httpx.AsyncClient, ep: str = "dev-1", **params: object
                 ) -> list[dict[str, object]]:
    r = await http.get(f"/api/clients/{ep}/values", params=params)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    samples: list[dict[str, object]] = r.json()["samples"]
    return samples


async def latest(http: httpx.AsyncClient, ep: str = "dev-1", **params: object
                 ) -> dict[str, dict[str, object]]:
    r = await http.get(f"/api/clients/{ep}/values/latest", params=params)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return {v["path"]: v for v in r.json()["values"]}


async def test_reads_are_kept_with_their_time(s: Stack) -> None:
    assert await latest(s.http) == {}
    before = time.time()
    assert (await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0"})).json()[
        "code"] == "2.05"
    got = await latest(s.http)
    battery = got["/3/0/9"]
    assert battery["value"] == 87 and battery["type"] == "Integer"
    assert battery["source"] == "read" and before <= battery["time"] <= time.time()  # type: ignore[operator]
    # Every value of the instance, multiple-resource instances each on their own path.
    assert got["/3/0/7/1"]["value"] == 5000 and got["/3/0/0"]["value"] == "aiocoap-works"
    assert got["/3/0/13"] == {**got["/3/0/13"], "type": "Time", "value": 1767225600}
    # A prefix narrows it; a path is a path, not a string prefix.
    assert set(await latest(s.http, path="/3/0/7")) == {"/3/0/7/0", "/3/0/7/1"}
    assert set(await latest(s.http, path="/3/0/1")) == {"/3/0/1"}
    # A second read adds to the history; latest is the newest.
    s.device.set_value("/3303/0/5700", 30.5)
    for _ in range(2):
        await s.http.get("/api/clients/dev-1/read", params={"path": "/3303/0/5700"})
    history = await values(s.http, path="/3303/0/5700")
    assert [h["value"] for h in history] == [30.5, 30.5]
    assert history[0]["time"] <= history[1]["time"]  # type: ignore[operator]
    # Failed reads keep nothing.
    await s.http.get("/api/clients/dev-1/read", params={"path": "/3/0/10"})
    assert "/3/0/10" not in await latest(s.http)
    metrics = (await s.http.get("/metrics")).text
    recorded = next(line for line in metrics.splitlines()
                    if line.startswith("lwm2m_values_recorded_total"))
    assert float(recorded.split()[1]) == len(got) + 2
    assert "lwm2m_values_dropped_total 0.0" in metrics


async def test_notifications_and_sends_are_kept(s: Stack) -> None:
    events = s.server.events.stream()
    r = await s.http.post("/api/clients/dev-1/observe", json={"path": "/3303/0/5700"})
    assert r.json()["code"] == "2.05"
    s.device.set_value("/3303/0/5700", 33.0)
    await events.until(NotificationReceived)
    history = await values(s.http, path="/3303/0/5700")
    assert [(h["value"], h["source"]) for h in history] == [(21.5, "observe"),
                                                            (33.0, "observe")]
    # A Send with the device's own time: kept at that time (here a day ago).
    day_ago = round(time.time()) - 86400
    payload = json.dumps([{"bn": "/3/0/", "bt": day_ago, "n": "9", "v": 12},
                          {"n": "9", "t": 60, "v": 13}]).encode()
    assert s.device.context is not None
    reply = await s.device.context.request(aiocoap.Message(
        code=C.POST, uri=f"{s.device.server_uri}/dp", payload=payload,
        content_format=110)).response
    assert reply.code.is_successful()
    await events.until(SendReceived)
    sent = await values(s.http, path="/3/0/9")
    assert [(h["time"], h["value"], h["source"]) for h in sent] == [
        (day_ago, 12, "send"), (day_ago + 60, 13, "send")]
    # Time ranges, and the newest N.
    assert [h["value"] for h in await values(s.http, since=day_ago + 1,
                                             until=day_ago + 3600)] == [13]
    assert [h["value"] for h in await values(s.http, limit=1)] == [33.0]
    events.close()


async def test_bad_queries_and_forgetting(s: Stack) -> None:
    assert (await s.http.get("/api/clients/dev-1/values", params={"path": "/3/x"})
            ).status_code == 400
    for params in ({"limit": 0}, {"limit": 10_001}, {"since": "yesterday"}):
        r = await s.http.get("/api/clients/dev-1/values", params=params)
        assert r.status_code == 422, params
    assert await values(s.http, ep="nobody") == []
    # Opaque values travel as base64, as everywhere in the API.
    assert s.server.values is not None
    s.server.values.record("dev-1", 5.0, "send", [("/19/0/0/0", "Opaque", b"\x00AN")])
    assert (await latest(s.http))["/19/0/0/0"]["value"] == {"base64": "AEFO"}
    r = await s.http.delete("/api/clients/dev-1/values")
    assert r.status_code == 204
    assert await values(s.http) == [] and await latest(s.http) == {}


async def test_values_outlive_the_registration_in_sqlite(tmp_path: Path) -> None:
    async def running() -> tuple[LwM2MServer, WebServer]:
        server = LwM2MServer(ServerConfig(host="::1", port=0, store="sqlite",
                                          data_dir=tmp_path))
        await server.start()
        web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
        await web.start()
        return server, web

    server, web = await running()
    device = await started_device("dev-sql")
    try:
        assert (await device.register(f"coap://[::1]:{server.port}")).code.is_successful()
        async with httpx.AsyncClient(base_url=web.url, timeout=20,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.get("/api/clients/dev-sql/read", params={"path": "/3/0/9"})
            assert r.json()["code"] == "2.05"
            assert (await latest(http, "dev-sql"))["/3/0/9"]["value"] == 87
        await device.deregister()
    finally:
        await device.stop()
        await web.stop()
        await server.stop()
    server, web = await running()
    try:
        async with httpx.AsyncClient(base_url=web.url, timeout=20,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert (await latest(http, "dev-sql"))["/3/0/9"]["value"] == 87
            assert len(await values(http, "dev-sql", path="/3/0/9")) == 1
    finally:
        await web.stop()
        await server.stop()


async def test_end_device_values_in_sqlite(tmp_path: Path) -> None:
    """An end device's values are kept under its own name; an ordinary device that
    registered the same text as its endpoint name neither sees nor writes into them."""
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", data_dir=tmp_path,
                                      values_store="sqlite"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    gateway = LwM2MGateway(ClientConfig.development("gw-1", f"coap://[::1]:{server.port}",
                                                    host="::1"),
                           end_devices=simulated_end_devices(2, gateway="gw-1"))
    impostor = await started_device("gw-1/dev1")
    try:
        await gateway.start()
        await gateway.wait_registered(5)
        assert (await impostor.register(f"coap://[::1]:{server.port}")).code.is_successful()
        async with httpx.AsyncClient(base_url=web.url, timeout=20,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            read = await http.get("/api/clients/gw-1/devices/dev1/read",
                                  params={"path": "/3303/0/5700"})
            assert read.json()["code"] == "2.05", read.text
            assert impostor.context is not None
            reply = await impostor.context.request(aiocoap.Message(
                code=C.POST, uri=f"{impostor.server_uri}/dp", content_format=110,
                payload=b'[{"n": "/3303/0/5700", "v": -40.0}]')).response
            assert reply.code.is_successful()
            assert server.values is not None
            await server.values.flush()
            kept = await latest(http, "gw-1/devices/dev1")
            assert list(kept) == ["/3303/0/5700"]
            assert kept["/3303/0/5700"]["value"] == 20.1
            assert kept["/3303/0/5700"]["source"] == "read"
            assert await latest(http, "gw-1/devices/dev0") == {}
            forgot = await http.delete("/api/clients/gw-1/devices/dev1/values")
            assert forgot.status_code == 204, forgot.text
            assert await values(http, "gw-1/devices/dev1") == []
            # The impostor's own values are still there, under its own name.
            assert [s.value for s in await server.values.history("gw-1/dev1")] == [-40.0]
    finally:
        await impostor.stop()
        await gateway.stop(deregister=False)
        await web.stop()
        await server.stop()


async def test_values_store_off() -> None:
    server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", values_store="off"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    try:
        assert server.values is None
        async with httpx.AsyncClient(base_url=web.url, timeout=10,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            r = await http.get("/api/clients/dev-1/values/latest")
            assert r.status_code == 404 and "values_store" in r.json()["detail"]
    finally:
        await web.stop()
        await server.stop()
    wrong = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", values_store="disk"))
    with pytest.raises(ValueError, match="values_store"):
        await wrong.start()
    await wrong.stop()


def test_values_settings(tmp_path: Path) -> None:
    from aiolwm2m.cli.server_cmd import RunningServer
    from aiolwm2m.cli.settings import SettingsError, load_settings

    toml = tmp_path / "server.toml"
    toml.write_text('values_store = "memory"\nvalues_max_samples = 5000\n')
    settings = load_settings(toml, {"AIOLWM2M_VALUES_MAX_AGE": "3600"}, {})
    config = RunningServer(settings).server.config
    assert (config.values_store, config.values_max_age, config.values_max_samples) == (
        "memory", 3600.0, 5000)
    with pytest.raises(SettingsError, match="values_store must be one of"):
        load_settings(None, {"AIOLWM2M_VALUES_STORE": "disk"}, {})
    with pytest.raises(SettingsError, match="values_max_samples"):
        load_settings(None, {}, {"values_max_samples": 0})
