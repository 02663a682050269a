"""The NIDD REST API (/api/nidd): devices, groups and quotas, reflected at the SCEF; the
byte-quota extension negotiated with it; 404 while the server has no SCEF."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aiolwm2m.nidd.quota_extension import BYTE_QUOTA_FEATURE
from aiolwm2m.nidd.quotas import QuotaSpec
from aiolwm2m.nidd.settings import NiddSettings
from aiolwm2m.nidd.t8_fields import has_feature
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .server_rig import TOKEN, nidd_rig
from .t8_schema import T8Schema, t8_schema

UE = "dev-9@nidd.example"


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


async def test_devices_come_and_go_through_the_api(schema: T8Schema) -> None:
    async with nidd_rig(schema) as rig:
        api = rig.api
        r = await api.put(f"/api/nidd/devices/{UE}", json={
            "endpoint": "dev-9", "ttl": 120, "quota": {"downlink_bytes": 5000,
                                                       "uplink_packets": 10, "window": 3600}})
        assert r.status_code == 200, r.text
        assert r.json()["endpoint"] == "dev-9" and r.json()["ttl"] == 120
        url = await rig.configured(UE)
        scef = rig.scef.scef
        assert scef is not None
        record = next(r for r in scef.configurations.values() if r.config.self == url)
        # The byte quota went with the configuration, behind its feature bit.
        assert record.quota is not None and record.quota.downlinkBytes == 5000
        view = (await api.get(f"/api/nidd/devices/{UE}")).json()
        configuration = view["configuration"]
        assert configuration["state"] == "active" and configuration["quota_extension"]
        assert configuration["remaining"]["remainingDownlinkBytes"] == 5000
        assert configuration["maximumPacketSize"] == 12000
        assert has_feature(record.config.supportedFeatures, BYTE_QUOTA_FEATURE)
        assert view["quota_remaining"] == {"uplink_packets": 10, "downlink_bytes": 5000}
        assert [d["ident"] for d in (await api.get("/api/nidd/devices")).json()] == [UE]
        status = (await api.get("/api/nidd")).json()
        assert status["devices"] == 1 and status["active_configurations"] == 1
        # Removing the device deletes its configuration at the SCEF.
        assert (await api.delete(f"/api/nidd/devices/{UE}")).status_code == 204
        async with asyncio.timeout(10):
            while scef.configurations:
                await asyncio.sleep(0.02)
        assert (await api.get(f"/api/nidd/devices/{UE}")).status_code == 404
        assert (await api.delete(f"/api/nidd/devices/{UE}")).status_code == 404


async def test_bad_device_settings_are_refused(schema: T8Schema) -> None:
    async with nidd_rig(schema) as rig:
        api = rig.api
        r = await api.put("/api/nidd/devices/no-at-sign", json={})
        assert r.status_code == 400 and "MSISDN" in r.json()["detail"]
        r = await api.put(f"/api/nidd/devices/{UE}", json={"ttl": -1})
        assert r.status_code == 400 and r.json()["detail"].startswith("/ttl")
        r = await api.put(f"/api/nidd/devices/{UE}", json={"quota": {"uplink_bytes": 0}})
        assert r.status_code == 400 and "uplink_bytes" in r.json()["detail"]
        r = await api.put(f"/api/nidd/devices/{UE}", json={"colour": "red"})
        assert r.status_code == 400
        assert (await api.put(f"/api/nidd/devices/{UE}", json={"endpoint": "ep"})).is_success
        r = await api.put("/api/nidd/devices/other@nidd.example", json={"endpoint": "ep"})
        assert r.status_code == 409 and UE in r.json()["detail"]
        r = await api.put("/api/nidd/groups/fleet@nidd.example", json={"ttl": 60})
        assert r.status_code == 200
        assert [g["external_group_id"] for g in (await api.get("/api/nidd/groups")).json()] == [
            "fleet@nidd.example"]
        assert (await api.delete("/api/nidd/groups/fleet@nidd.example")).status_code == 204
        async with httpx.AsyncClient(base_url=rig.web.url) as anonymous:
            assert (await anonymous.get("/api/nidd/devices")).status_code == 401


async def test_without_a_scef_the_api_says_so() -> None:
    server = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory"))
    await server.start()
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    try:
        async with httpx.AsyncClient(base_url=web.url,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            r = await api.get("/api/nidd")
            assert r.status_code == 404 and "not enabled" in r.json()["detail"]
            r = await api.post("/nidd/v1/callbacks/anything", json={})
            assert r.status_code == 404
            assert "lwm2m_nidd" not in (await api.get("/metrics")).text
    finally:
        await web.stop()
        await server.stop()


async def test_views_say_what_applies_and_groups_show_their_configuration(
        schema: T8Schema) -> None:
    """What the web UI shows: the ttl and quota in force (the entry's own, else the
    server's default) and each group's configuration at the SCEF."""
    default = QuotaSpec(uplink_packets=50, window=60)
    async with nidd_rig(schema, settings=NiddSettings(ttl=900, quota=default)) as rig:
        api = rig.api
        view = (await api.put(f"/api/nidd/devices/{UE}", json={"endpoint": "dev-9"})).json()
        assert view["ttl"] is None and view["ttl_in_force"] == 900
        assert view["quota"] is None
        assert view["quota_in_force"] == default.to_json()
        assert view["quota_remaining"] == {"uplink_packets": 50}
        own = {"downlink_packets": 4, "window": 3600}
        view = (await api.put(f"/api/nidd/devices/{UE}", json={"ttl": 30, "quota": own})).json()
        assert view["ttl_in_force"] == 30
        assert view["quota_in_force"] == QuotaSpec(downlink_packets=4, window=3600).to_json()
        assert view["quota_remaining"] == {"downlink_packets": 4}

        group = "fleet@nidd.example"
        r = await api.put(f"/api/nidd/groups/{group}", json={"quota": {"uplink_bytes": 900}})
        assert r.status_code == 200, r.text
        assert r.json()["ttl_in_force"] == 900
        assert r.json()["quota_in_force"]["uplink_bytes"] == 900
        await rig.configured(group)
        listed = (await api.get("/api/nidd/groups")).json()
        assert [g["external_group_id"] for g in listed] == [group]
        configuration = listed[0]["configuration"]
        assert configuration["state"] == "active" and configuration["url"]
        assert configuration["attribute"] == "externalGroupId"
        assert (await api.get(f"/api/nidd/groups/{group}")).json() == listed[0]
        assert (await api.delete(f"/api/nidd/groups/{group}")).status_code == 204
        assert (await api.get(f"/api/nidd/groups/{group}")).status_code == 404


async def test_the_queue_summary_says_what_waits_now(schema: T8Schema) -> None:
    """The downlink summary's "queued" is what waits now, not how many ever waited (the
    counter of the same name used to overwrite it)."""
    async with nidd_rig(schema) as rig:
        downlink = rig.nidd.downlink
        # A NON GET for a device no configuration reaches: it waits, then its TTL ends.
        downlink.submit(("nobody@nidd.example", 0), b"\x51\x01\x00\x07\x09",
                        deadline=downlink.clock() + 0.3)
        assert (await rig.api.get("/api/nidd")).json()["downlink"]["queued"] == 1
        async with asyncio.timeout(10):
            while downlink.queued:
                await asyncio.sleep(0.02)
        summary = (await rig.api.get("/api/nidd")).json()["downlink"]
        assert summary["queued"] == 0 and summary["pending"] == 0
        assert summary["devices_waiting"] == 0
        assert summary["totals"]["queued"] == 1
        assert summary["totals"]["dropped_ttl-expired"] == 1
