"""The SCEF emulator over real sockets: every T8 request and response, and every
notification it posts, is checked against TS29122_NIDD.yaml; its UE socket is driven by a
bare UE."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from aiolwm2m.nidd import t8_model as m
from aiolwm2m.nidd import ue_link
from aiolwm2m.nidd.emulator import UeBehaviour
from aiolwm2m.nidd.quota_extension import BYTE_QUOTA_FEATURE, QUOTA_EXCEEDED
from aiolwm2m.nidd.t8_fields import feature_bits, format_date_time

from .fixtures import bare_ue, callback_sink, checking_client, emulator
from .t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"
BASE = "/3gpp-nidd/v1/as-1/configurations"


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def configure(http, sink, ue: str = UE, **extra) -> str:  # type: ignore[no-untyped-def]
    r = await http.post(BASE, json={"externalId": ue, "notificationDestination": sink.url,
                                    **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["self"])


async def test_configuration_lifecycle(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http:
        url = await configure(http, sink, duration=format_date_time(time.time() + 600))
        assert url.startswith(scef.url + BASE + "/")
        body = (await http.get(url)).json()
        assert body["status"] == m.ACTIVE and body["maximumPacketSize"] == 12_000
        assert [c["self"] for c in (await http.get(BASE)).json()] == [url]
        r = await http.patch(url, json={"duration": format_date_time(time.time() + 900)},
                             headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 200
        assert (await http.delete(url)).status_code == 204
        r = await http.get(url)
        assert r.status_code == 404 and r.json()["cause"] == "RESOURCE_NOT_FOUND"
        # Another SCS/AS does not see (or reach) the first one's configurations.
        url = await configure(http, sink)
        assert (await http.get(url.replace("/as-1/", "/as-2/"))).status_code == 404


async def test_downlink_to_an_attached_ue_is_delivered_at_once(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        attached = await ue.attach()
        assert attached.control["maximumPacketSize"] == 12_000
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"\x40\x01hello")})
        assert r.status_code == 200 and r.json()["deliveryStatus"] == m.SUCCESS
        frame = await ue.next(ue_link.MT_DATA)
        assert frame.data == b"\x40\x01hello"


async def test_power_saving_buffers_until_the_ue_attaches(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        await ue.attach()
        ue.detach()
        await asyncio.sleep(0.05)
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"one"), "maximumLatency": 60})
        assert r.status_code == 201 and r.json()["deliveryStatus"] == m.BUFFERING
        pending = (await http.get(f"{url}/downlink-data-deliveries")).json()
        assert [p["self"] for p in pending] == [r.headers["location"]]
        await ue.attach()
        assert (await ue.next(ue_link.MT_DATA)).data == b"one"
        (note,) = await sink.wait_for(m.NiddDownlinkDataDeliveryStatusNotification)
        assert note.niddDownlinkDataTransfer == r.headers["location"]
        assert note.deliveryStatus == m.SUCCESS
        assert (await http.get(r.headers["location"])).status_code == 404


async def test_latency_makes_a_delivery_pending_then_successful(schema: T8Schema) -> None:
    async with emulator(UeBehaviour(latency=0.2)) as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        await ue.attach()
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x")})
        assert r.status_code == 201 and r.json()["deliveryStatus"] == m.SENDING
        assert ue.frames.empty()
        (note,) = await sink.wait_for(m.NiddDownlinkDataDeliveryStatusNotification)
        assert note.deliveryStatus == m.SUCCESS
        assert (await ue.next(ue_link.MT_DATA)).data == b"x"


async def test_reachability_loss_buffers_then_times_out(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        await ue.attach()
        r = await http.patch(f"/emulator/v1/ues/{UE}", json={"reachable": False},
                             headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["reachable"] is False
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x"), "maximumLatency": 1})
        assert r.json()["deliveryStatus"] == m.BUFFERING_TEMPORARILY_NOT_REACHABLE
        (note,) = await sink.wait_for(m.NiddDownlinkDataDeliveryStatusNotification)
        assert note.deliveryStatus == m.FAILURE_TIMEOUT
        assert ue.frames.empty() or all(f.kind != ue_link.MT_DATA for f in
                                        [ue.frames.get_nowait()])


async def test_reachability_back_delivers_what_was_buffered(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        await ue.attach()
        scef.scef.set_behaviour(UE, {"reachable": False})  # type: ignore[union-attr]
        await http.post(f"{url}/downlink-data-deliveries",
                        json={"externalId": UE, "data": b64(b"later")})
        scef.scef.set_behaviour(UE, {"reachable": True})  # type: ignore[union-attr]
        assert (await ue.next(ue_link.MT_DATA)).data == b"later"
        (note,) = await sink.wait_for(m.NiddDownlinkDataDeliveryStatusNotification)
        assert note.deliveryStatus == m.SUCCESS


async def test_indicate_error_fails_at_once_for_a_sleeping_ue(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http:
        url = await configure(http, sink, pdnEstablishmentOption=m.INDICATE_ERROR)
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x")})
        assert r.status_code == 500
        failure = m.NiddDownlinkDataDeliveryFailure.from_json(r.json())
        assert failure.problemDetail.cause == "UE_NOT_REACHABLE"


async def test_packet_size_and_downlink_rate(schema: T8Schema) -> None:
    behaviour = UeBehaviour(maximumPacketSize=80, downlinkRate=2)
    async with emulator(behaviour) as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        await ue.attach()
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x" * 11)})
        assert r.status_code == 403 and r.json()["cause"] == "DATA_TOO_LARGE"
        codes = []
        for _ in range(3):
            r = await http.post(f"{url}/downlink-data-deliveries",
                                json={"externalId": UE, "data": b64(b"x" * 10)})
            codes.append(r.status_code)
        assert codes == [200, 200, 429]
        assert int(r.headers["retry-after"]) >= 1


async def test_uplink_reaches_the_callback_and_rate_control_rejects(schema: T8Schema) -> None:
    async with emulator(UeBehaviour(apnRateControl=2)) as scef, \
            callback_sink(schema) as sink, checking_client(schema, scef.url) as http, \
            bare_ue(UE, scef) as ue:
        url = await configure(http, sink)
        attached = await ue.attach()
        assert attached.control["apnRateControl"] == 2
        for i in range(3):
            ue.send(ue_link.mo_data(UE, b"mo%d" % i))
        reject = await ue.next(ue_link.REJECT)
        assert reject.control["cause"] == "APN_RATE_CONTROL" and reject.control["retryAfter"] > 0
        notes = await sink.wait_for(m.NiddUplinkDataNotification, 2)
        assert [n.data for n in notes] == [b"mo0", b"mo1"]
        assert notes[0].niddConfiguration == url and notes[0].externalId == UE


async def test_uplink_without_configuration_or_attach_is_rejected(schema: T8Schema) -> None:
    async with emulator() as scef, bare_ue(UE, scef) as ue:
        ue.send(ue_link.mo_data(UE, b"x"))
        assert (await ue.next(ue_link.REJECT)).control["cause"] == "NOT_ATTACHED"
        await ue.attach()
        ue.send(ue_link.mo_data(UE, b"x"))
        assert (await ue.next(ue_link.REJECT)).control["cause"] == "NO_CONFIGURATION"
        ue.send(b"\x01\x09garbage")  # not a frame: dropped, the socket keeps serving
        ue.send(ue_link.mo_data(UE, b"y" * 2000))
        assert (await ue.next(ue_link.REJECT)).control["cause"] == "DATA_TOO_LARGE"


async def test_configuration_expiry_terminates_it(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http:
        url = await configure(http, sink, duration=format_date_time(time.time() + 2))
        (note,) = await sink.wait_for(m.NiddConfigurationStatusNotification, timeout=10)
        assert note.status == m.TERMINATED and note.niddConfiguration == url
        assert note.externalId == UE
        assert (await http.get(url)).status_code == 404


async def test_group_delivery_reports_each_member(schema: T8Schema) -> None:
    group = "fleet@nidd.example"
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, \
            bare_ue("a@nidd.example", scef) as a, bare_ue("b@nidd.example", scef) as b, \
            bare_ue("c@nidd.example", scef) as c:
        r = await http.post(BASE, json={"externalGroupId": group,
                                        "notificationDestination": sink.url})
        url = r.json()["self"]
        for ue in (a, b, c):
            await ue.attach((group,))
        c.detach()
        await asyncio.sleep(0.05)
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalGroupId": group, "data": b64(b"all"),
                                  "maximumLatency": 1})
        assert r.status_code == 201
        assert (await a.next(ue_link.MT_DATA)).data == b"all"
        assert (await b.next(ue_link.MT_DATA)).data == b"all"
        (note,) = await sink.wait_for(m.GmdNiddDownlinkDataDeliveryNotification)
        assert note.niddDownlinkDataTransfer == r.headers["location"]
        assert {(g.externalId, g.deliveryStatus) for g in note.gmdResults} == {
            ("a@nidd.example", m.SUCCESS), ("b@nidd.example", m.SUCCESS),
            ("c@nidd.example", m.FAILURE_TIMEOUT)}
        # A member reached one by one through the group's configuration.
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": "a@nidd.example", "data": b64(b"one")})
        assert r.status_code == 200


async def test_rds_ports_route_uplink_to_the_application(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink_a, \
            callback_sink(schema) as sink_b, checking_client(schema, scef.url) as http, \
            bare_ue(UE, scef) as ue:
        await configure(http, sink_a)
        url_b = await configure(http, sink_b)
        r = await http.put(f"{url_b}/rds-ports/ue3-ef4", json={"appId": "lwm2m-b"})
        assert r.status_code == 201 and r.json()["appId"] == "lwm2m-b"
        assert [p["appId"] for p in (await http.get(f"{url_b}/rds-ports")).json()] == [
            "lwm2m-b"]
        await ue.attach()
        ue.send(ue_link.mo_data(UE, b"for-b", port_ue=3, port_scef=4))
        ue.send(ue_link.mo_data(UE, b"for-a"))
        (note_b,) = await sink_b.wait_for(m.NiddUplinkDataNotification)
        (note_a,) = await sink_a.wait_for(m.NiddUplinkDataNotification)
        assert note_b.data == b"for-b" and note_b.rdsPort == m.RdsPort(3, 4)
        assert note_a.data == b"for-a"
        assert (await http.delete(f"{url_b}/rds-ports/ue3-ef4")).status_code == 204
        assert (await http.get(f"{url_b}/rds-ports/ue3-ef4")).status_code == 404


async def test_bad_requests_get_problem_details(schema: T8Schema) -> None:
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url, check_requests=False) as http:
        r = await http.post(BASE, content=b"{not json", headers={"content-type":
                                                                 "application/json"})
        assert r.status_code == 400 and r.json()["cause"] == "INVALID_MSG_FORMAT"
        r = await http.post(BASE, content=b"<x/>", headers={"content-type": "text/xml"})
        assert r.status_code == 415
        r = await http.post(BASE, content=b"[" * 70000, headers={"content-type":
                                                                 "application/json"})
        assert r.status_code == 413
        r = await http.post(BASE, json={"externalId": UE, "msisdn": "123456",
                                        "notificationDestination": sink.url})
        assert r.status_code == 400
        url = await configure(http, sink)
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": "not base64!"})
        assert r.status_code == 400
        assert r.json()["invalidParams"] == [{"param": "/data", "reason": "not base64 data"}]


async def test_a_token_is_required_when_configured(schema: T8Schema) -> None:
    async with emulator(token="s3cret") as scef, checking_client(schema, scef.url) as http:
        r = await http.get(BASE)
        assert r.status_code == 401 and r.json()["status"] == 401
        r = await http.get(BASE, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and r.json() == []


async def test_byte_quota_extension_is_negotiated_and_enforced(schema: T8Schema) -> None:
    attribute = "vendorSpecific-000000"
    async with emulator() as scef, callback_sink(schema) as sink, \
            checking_client(schema, scef.url) as http, bare_ue(UE, scef) as ue:
        await ue.attach()
        # Without the feature bit the attribute is ignored.
        url = await configure(http, sink, **{attribute: {"downlinkBytes": 1}})
        body = (await http.get(url)).json()
        assert attribute not in body and "supportedFeatures" not in body
        await http.delete(url)
        url = await configure(http, sink, supportedFeatures=feature_bits(BYTE_QUOTA_FEATURE),
                              **{attribute: {"downlinkBytes": 10, "windowSeconds": 3600}})
        body = (await http.get(url)).json()
        assert body["supportedFeatures"] == feature_bits(BYTE_QUOTA_FEATURE)
        assert body[attribute]["remainingDownlinkBytes"] == 10
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x" * 8)})
        assert r.status_code == 200
        r = await http.post(f"{url}/downlink-data-deliveries",
                            json={"externalId": UE, "data": b64(b"x" * 8)})
        assert r.status_code == 429 and r.json()["cause"] == QUOTA_EXCEEDED
        assert (await http.get(url)).json()[attribute]["remainingDownlinkBytes"] == 2
