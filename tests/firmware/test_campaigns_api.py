"""``/api/firmware/campaigns``, ``/updates`` and ``/jobs`` over real sockets: create (by list
or filter), follow, pause, resume, cancel and remove campaigns; one device's update; bad
input answered with the precise status; the events in the stream; the metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.simulator.firmware import sim_image

from .sims import sims, until
from .stack import FirmwareStack, firmware_stack

IMAGE = sim_image("2.0.0", 6000)
FAST = {"update_timeout": 5, "request_timeout": 2, "retry_delay": 0.2, "max_attempts": 2}


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[FirmwareStack]:
    async with firmware_stack(tmp_path, host="127.0.0.1") as st:
        yield st


async def upload(s: FirmwareStack, **params: str) -> str:
    r = await s.http.post("/api/firmware/images", params={"name": "sim", "version": "2.0.0",
                                                          **params},
                          content=IMAGE)
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    return sha


async def wait_state(s: FirmwareStack, cid: str, *states: str) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def poll() -> bool:
        nonlocal body
        body = (await s.http.get(f"/api/firmware/campaigns/{cid}")).json()
        return body["state"] in states

    async with asyncio.timeout(30):
        while not await poll():
            await asyncio.sleep(0.05)
    return body


async def test_campaign_lifecycle(s: FirmwareStack) -> None:
    sha = await upload(s, device_types="sim")
    async with sims(s.server, 5) as _:
        # Device types: the image is for "sim" devices; these report no /3/0/17.
        r = await s.http.post("/api/firmware/campaigns", json={
            "name": "typed", "image": sha, "targets": {"endpoints": ["sim-000000"]},
            "limits": {**FAST, "max_attempts": 1}})
        assert r.status_code == 201, r.text
        typed = await wait_state(s, r.json()["id"], "finished")
        assert typed["counts"] == {"failed": 1}
        job = (await s.http.get(f"/api/firmware/campaigns/{typed['id']}/jobs")).json()
        assert job["items"][0]["reason"].startswith("the device's type None is not one")

        untyped = await s.http.post("/api/firmware/images", params={
            "name": "sim-any", "version": "2.0.0"}, content=IMAGE + b"\n")
        sha = untyped.json()["sha256"]
        r = await s.http.post("/api/firmware/campaigns", json={
            "name": "fleet 2.0.0", "image": sha,
            "targets": {"filter": {"endpoint": "sim-00000[0-3]", "object": 5,
                                   "attributes": {"binding": "U"}}},
            "limits": {**FAST, "concurrency": 2}})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["devices"] == 4 and created["state"] == "running"
        assert created["limits"]["concurrency"] == 2
        done = await wait_state(s, created["id"], "finished")
        assert done["counts"] == {"succeeded": 4} and done["progress"] == 1.0
        listed = (await s.http.get("/api/firmware/campaigns")).json()
        assert [c["id"] for c in listed] == [created["id"], typed["id"]]
        page = (await s.http.get(f"/api/firmware/campaigns/{created['id']}/jobs",
                                 params={"state": "succeeded", "limit": 2,
                                         "steps": "true"})).json()
        assert page["total"] == 4 and len(page["items"]) == 2
        assert page["items"][0]["steps"][-1]["step"] == "succeeded"
        assert "token" not in page["items"][0]
        job = (await s.http.get(f"/api/firmware/jobs/{page['items'][0]['id']}")).json()
        assert job["state"] == "succeeded" and job["method"] == "coap"
        history = (await s.http.get("/api/firmware/jobs",
                                    params={"endpoint": "sim-000000"})).json()
        assert [j["state"] for j in history] == ["failed", "succeeded"]

        # Finished: no more control, but it can be removed.
        r = await s.http.post(f"/api/firmware/campaigns/{created['id']}/pause")
        assert r.status_code == 409 and "finished" in r.json()["detail"]
        r = await s.http.delete(f"/api/firmware/campaigns/{created['id']}")
        assert r.status_code == 204
        r = await s.http.get(f"/api/firmware/campaigns/{created['id']}")
        assert r.status_code == 404


async def test_pause_resume_cancel_and_image_in_use(s: FirmwareStack) -> None:
    sha = await upload(s)
    async with sims(s.server, 4, install_seconds=0.5) as _:
        r = await s.http.post("/api/firmware/campaigns", json={
            "name": "controlled", "image": sha, "targets": {"filter": {"endpoint": "sim-*"}},
            "limits": {**FAST, "concurrency": 1}})
        cid = r.json()["id"]
        r = await s.http.delete(f"/api/firmware/images/{sha}")
        assert r.status_code == 409 and "controlled" in r.json()["detail"]
        assert (await s.http.post(f"/api/firmware/campaigns/{cid}/pause")).json()["state"] \
            == "paused"
        assert (await s.http.post(f"/api/firmware/campaigns/{cid}/resume")).json()["state"] \
            == "running"
        cancelled = (await s.http.post(f"/api/firmware/campaigns/{cid}/cancel")).json()
        assert cancelled["state"] == "cancelled"
        r = await s.http.post(f"/api/firmware/campaigns/{cid}/resume")
        assert r.status_code == 409
        await until(lambda: not s.firmware.run(cid).tasks, what="the running update to end")
        r = await s.http.delete(f"/api/firmware/images/{sha}")
        assert r.status_code == 200


async def test_single_device_update(s: FirmwareStack) -> None:
    sha = await upload(s)
    async with sims(s.server, 1) as fleet:
        r = await s.http.post("/api/firmware/updates", json={
            "endpoint": "sim-000000", "image": sha, "limits": FAST})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "sim 2.0.0 to sim-000000" and r.json()["devices"] == 1
        await wait_state(s, r.json()["id"], "finished")
        assert fleet.devices[0].firmware_version == "2.0.0"
    r = await s.http.post("/api/firmware/updates", json={"endpoint": "nobody", "image": sha})
    assert r.status_code == 404 and r.json()["detail"] == "no registration for endpoint 'nobody'"


async def test_campaign_over_a_device_group(s: FirmwareStack) -> None:
    sha = await upload(s)
    async with sims(s.server, 4) as fleet:
        # Static members (one never registered) and a filter for registered devices.
        await s.server.groups.put("line-2", members=["sim-000000", "gone-1"],
                                  filter="ep=sim-000002")
        assert sorted(s.server.groups.members("line-2")) == [
            "gone-1", "sim-000000", "sim-000002"]
        r = await s.http.post("/api/firmware/campaigns", json={
            "name": "line 2", "image": sha, "targets": {"group": "line-2"},
            "limits": {**FAST, "device_wait": 1}})
        assert r.status_code == 201, r.text
        assert r.json()["devices"] == 3 and r.json()["targets"] == {"group": "line-2"}
        done = await wait_state(s, r.json()["id"], "finished")
        assert done["counts"] == {"succeeded": 2, "failed": 1}
        jobs = (await s.http.get(f"/api/firmware/campaigns/{done['id']}/jobs")).json()
        failed = [j for j in jobs["items"] if j["state"] == "failed"]
        assert [j["endpoint"] for j in failed] == ["gone-1"]
        assert "not registered" in failed[0]["reason"]
        assert [d.firmware_version == "2.0.0" for d in fleet.devices] == [
            True, False, True, False]


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"targets": {"group": "nope"}}, 404, "no device group 'nope'"),
    ({"targets": {"group": ["x"]}}, 400, "group is the name of a device group"),
    ({"targets": {"groups": ["x"]}}, 400, "unknown kind of targets 'groups'"),
    ({"targets": {"endpoints": []}}, 400, "the targets select no device"),
    ({"targets": {"filter": {"endpoint": "zzz-*"}}}, 400, "the targets select no device"),
    ({"targets": {"filter": {"colour": "red"}}}, 400, "unknown filter fields: colour"),
    ({"targets": {"endpoints": ["a"], "filter": {}}}, 400, "exactly one of"),
    ({"image": "0" * 64}, 404, "no firmware image"),
    ({"image": "Z" * 64}, 400, "64 lower-case hex"),
    ({"limits": {"concurrency": 0}}, 422, "concurrency"),
    ({"limits": {"max_failure_rate": 1.5}}, 422, "max_failure_rate"),
    ({"limits": {"method": "ftp"}}, 422, "method"),
])
async def test_bad_campaigns(s: FirmwareStack, body: dict[str, Any], status: int,
                             detail: str) -> None:
    sha = await upload(s)
    full = {"name": "bad", "image": sha, "targets": {"endpoints": ["dev-1"]}, **body}
    r = await s.http.post("/api/firmware/campaigns", json=full)
    assert r.status_code == status, r.text
    assert detail in json.dumps(r.json())
    assert (await s.http.get("/api/firmware/campaigns")).json() == []


async def test_unknown_ids(s: FirmwareStack) -> None:
    for path in ("/api/firmware/campaigns/nope", "/api/firmware/campaigns/nope/jobs",
                 "/api/firmware/jobs/nope-0"):
        r = await s.http.get(path)
        assert r.status_code == 404, path
    r = await s.http.post("/api/firmware/campaigns/nope/cancel")
    assert r.status_code == 404


async def test_events_and_metrics(s: FirmwareStack) -> None:
    sha = await upload(s)
    async with sims(s.server, 2) as _, s.http.stream(
            "GET", "/api/events", timeout=30) as stream:
        r = await s.http.post("/api/firmware/campaigns", json={
            "name": "watched", "image": sha,
            "targets": {"filter": {"endpoint": "sim-*"}}, "limits": FAST})
        cid = r.json()["id"]
        seen: dict[str, list[dict[str, Any]]] = {"firmware-job": [], "firmware-campaign": []}
        event = ""
        async with asyncio.timeout(30):
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in seen:
                    seen[event].append(json.loads(line[6:]))
                    last = seen["firmware-campaign"][-1:] or [{}]
                    if last[0].get("state") == "finished":
                        break
    jobs = seen["firmware-job"]
    assert {j["endpoint"] for j in jobs} == {"sim-000000", "sim-000001"}
    assert all("token" not in j for j in jobs)
    assert {j["step"]["step"] for j in jobs if j["step"]} >= {
        "started", "downloading", "downloaded", "updating", "succeeded"}
    assert seen["firmware-campaign"][-1]["campaign_id"] == cid
    assert seen["firmware-campaign"][-1]["counts"] == {"succeeded": 2}
    metrics = (await s.http.get("/metrics")).text
    assert 'lwm2m_firmware_jobs{state="succeeded"} 2.0' in metrics
    assert 'lwm2m_firmware_campaigns{state="finished"} 1.0' in metrics
    assert 'lwm2m_firmware_updates_finished_total{outcome="succeeded"} 2.0' in metrics
    assert f"lwm2m_firmware_bytes_served_total {2 * len(IMAGE)}.0" in metrics


async def test_openapi_lists_the_firmware_api(s: FirmwareStack) -> None:
    spec = (await s.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/api/firmware/images", "/api/firmware/images/{sha256}",
                 "/api/firmware/campaigns", "/api/firmware/campaigns/{campaign_id}/pause",
                 "/api/firmware/campaigns/{campaign_id}/resume",
                 "/api/firmware/campaigns/{campaign_id}/cancel", "/api/firmware/updates",
                 "/api/firmware/jobs", "/api/firmware/jobs/{job_id}"):
        assert path in paths, path
    assert "/fw/{token}" not in paths  # the devices' download, not part of the API
    assert "application/octet-stream" in paths["/api/firmware/images"]["post"][
        "requestBody"]["content"]
    assert (await s.http.get("/api-docs")).status_code == 200
