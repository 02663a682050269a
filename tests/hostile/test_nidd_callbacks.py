"""Attacks on the NIDD side of the server, bounded: a flood of unauthenticated callbacks, a
huge callback body, a replayed uplink, more group members than the server keeps, and a
downlink flood while the SCEF is down. The server answers each precisely, counts it, logs a
bounded number of lines, holds bounded memory, and keeps serving."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from aiolwm2m.coap.codec import encode_udp
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.nidd import service as nidd_service
from aiolwm2m.nidd.devices import NiddDevice, NiddGroup
from aiolwm2m.nidd.settings import NiddSettings

from ..nidd.server_rig import nidd_rig
from ..nidd.t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


def uplink(config_url: str, ident: str, data: bytes) -> dict[str, str]:
    return {"niddConfiguration": config_url, "externalId": ident,
            "data": base64.b64encode(data).decode()}


async def test_unauthenticated_callback_flood(schema: T8Schema,
                                              caplog: pytest.LogCaptureFixture) -> None:
    async with nidd_rig(schema, settings=NiddSettings(devices=(NiddDevice(UE),))) as rig:
        url = await rig.configured(UE)
        wrong = rig.nidd.callback_url.rsplit("/", 1)[0] + "/not-the-secret"
        body = uplink(url, UE, b"x" * 1000)
        caplog.set_level(logging.WARNING, logger="aiolwm2m.server.refusals")
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) as http:
            answers = await asyncio.gather(*(http.post(wrong, json=body) for _ in range(120)))
        assert {a.status_code for a in answers} == {401}
        # Small, fixed replies that name nothing of the request.
        assert max(len(a.content) for a in answers) < 200
        assert all(UE not in a.text for a in answers)
        assert rig.server.refusals.by_reason["nidd-callback-unauthenticated"] == 120
        lines = [r for r in caplog.records if "nidd-callback-unauthenticated" in r.getMessage()]
        assert len(lines) <= 21
        # Still serving: the right secret works.
        r = await http_post(rig.nidd.callback_url, uplink(url, UE, b"\x50\x00\x00\x01"))
        assert r.status_code == 204


async def http_post(url: str, body: object) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, json=body)


async def _chunks(total: int) -> AsyncIterator[bytes]:
    block = b"[" * 65536
    for _ in range(total // len(block)):
        yield block


async def test_a_huge_callback_body_is_cut_off(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=NiddSettings(devices=(NiddDevice(UE),))) as rig:
        url = await rig.configured(UE)
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(rig.nidd.callback_url, content=_chunks(20 << 20),
                                headers={"content-type": "application/json"})
            assert r.status_code == 413
            assert rig.server.refusals.by_reason["nidd-oversized"] == 1
            r = await http.post(rig.nidd.callback_url, json=uplink(url, UE, b"\x50\x00\x00\x01"))
            assert r.status_code == 204


async def test_a_replayed_uplink_registers_once(schema: T8Schema) -> None:
    async with nidd_rig(schema, settings=NiddSettings(devices=(NiddDevice(UE),))) as rig:
        url = await rig.configured(UE)
        register = Message.request(Code.POST, ["rd"], query=["ep=dev-1", "lt=300", "b=N"],
                                   payload=b"</3/0>", content_format=40, token=b"\x01")
        register.mid = 77
        body = uplink(url, UE, encode_udp(register))
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) as http:
            answers = await asyncio.gather(*(http.post(rig.nidd.callback_url, json=body)
                                             for _ in range(100)))
        assert {a.status_code for a in answers} == {204}
        assert list(rig.server.registrations) == ["dev-1"]
        assert rig.nidd.endpoint.stats["uplink_duplicates"] == 99


async def test_group_members_beyond_the_bound_are_refused(
        schema: T8Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nidd_service, "MAX_MEMBERS", 5)
    group = "fleet@nidd.example"
    async with nidd_rig(schema, settings=NiddSettings(groups=(NiddGroup(group),))) as rig:
        url = await rig.configured(group)
        async with httpx.AsyncClient() as http:
            codes = [(await http.post(rig.nidd.callback_url, json=uplink(
                url, f"m{i}@nidd.example", b"\x50\x00\x00\x01"))).status_code
                for i in range(8)]
        assert codes == [204] * 5 + [503] * 3
        assert len(rig.nidd.members) == 5
        assert rig.server.refusals.by_reason["nidd-too-many-members"] == 3


async def test_a_downlink_flood_while_the_scef_is_down_is_bounded(schema: T8Schema) -> None:
    settings = NiddSettings(devices=(NiddDevice(UE),), max_queued_per_device=16)
    async with nidd_rig(schema, settings=settings) as rig:
        await rig.configured(UE)
        await rig.scef.stop()
        endpoint = rig.nidd.endpoint
        for i in range(200):
            endpoint.downlink.submit((UE, 0), encode_udp(Message(1, Code.GET, i)), 1e12)
        assert rig.nidd.downlink.queued <= 16
        assert rig.nidd.downlink.stats["dropped_queue-full"] == 200 - 16
