"""What the event stream and the observations listing say: notifications single and
composite in one shape, re-registrations naming what they replaced, refusals, and the
format an observation's notifications carry. Real server, real aiocoap device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiolwm2m.server.events import (
    Event,
    EventStream,
    NotificationReceived,
    Refused,
    Registered,
)
from aiolwm2m.web.events_json import event_json

from .api_fixtures import Stack, stack


@pytest.fixture
async def s() -> AsyncIterator[Stack]:
    async for st in stack():
        assert (await st.device.register(st.coap_uri)).code.is_successful()
        yield st


async def notification(s: Stack, events: EventStream[Event], composite: bool) -> dict[str, Any]:
    while True:
        ev = await events.next(5)
        if isinstance(ev, NotificationReceived) and ev.observation.composite == composite:
            return event_json(s.server, ev)


async def test_single_and_composite_notifications_have_the_same_shape(s: Stack) -> None:
    events = s.server.events.stream()
    await s.server.observe("dev-1", "/3303/0/5700", format=112)
    await s.server.observe_composite("dev-1", ["/3303/0/5700", "/3/0/9"], format=112)
    s.device.set_value("/3303/0/5700", 12.5)
    single = await notification(s, events, composite=False)
    composite = await notification(s, events, composite=True)
    assert set(single) == set(composite)
    assert single["composite"] is False and composite["composite"] is True
    for ev in (single, composite):
        assert (ev["code"], ev["format"]) == ("2.05", "senml-cbor")
    assert single["content"] == 12.5
    assert composite["content"] == {"/3/0/9": 87, "/3303/0/5700": 12.5}
    assert single["values"] == [v for v in composite["values"]
                                if v["path"] == "/3303/0/5700"]
    assert {v["path"] for v in composite["values"]} == {"/3/0/9", "/3303/0/5700"}
    assert single["values"][0]["name"] == "Sensor Value"


async def test_a_reregistration_says_what_it_replaced(s: Stack) -> None:
    first = s.server.registrations["dev-1"]
    events = s.server.events.stream()
    assert (await s.device.register(s.coap_uri)).code.is_successful()
    ev = await events.until(Registered, timeout=5)
    out = event_json(s.server, ev)
    address = f"{first.address[0]}:{first.address[1]}"
    assert out["replaced"] == {"registration_id": first.id, "address": address,
                               "transport": "udp"}
    assert out["registration_id"] != first.id and out["address"] == address
    await s.device.deregister()
    assert (await s.device.register(s.coap_uri)).code.is_successful()
    fresh = event_json(s.server, await events.until(Registered, timeout=5))
    assert fresh["replaced"] is None and fresh["transport"] == "udp"


async def test_refusal_events_name_reason_endpoint_and_peer(s: Stack) -> None:
    events = s.server.events.stream()
    assert (await s.device.update("lt=abc")).code.is_successful() is False
    out = event_json(s.server, await events.until(Refused, timeout=5))
    assert (out["type"], out["reason"], out["endpoint"], out["transport"]) == (
        "refused", "bad-request", "dev-1", "udp")
    assert out["peer"].startswith("::1:") and "lt=" in out["detail"]


async def test_observations_show_the_negotiated_format(s: Stack) -> None:
    r = await s.http.post("/api/clients/dev-1/observe", json={"path": "/3303/0/5700"})
    assert r.json()["code"] == "2.05"
    r = await s.http.post("/api/clients/dev-1/observe-composite",
                          json={"paths": ["/3/0/9"], "format": "senml-json"})
    assert r.json()["code"] == "2.05", r.text
    listed = (await s.http.get("/api/clients/dev-1/observations")).json()
    by_paths = {tuple(o["paths"]): o for o in listed}
    # No format asked for: the server picked one from the formats the device listed
    # (SenML CBOR), and the listing says what the notifications will carry.
    assert (by_paths[("/3303/0/5700",)]["format"],
            by_paths[("/3303/0/5700",)]["negotiated_format"]) == (None, "senml-cbor")
    assert (by_paths[("/3/0/9",)]["format"],
            by_paths[("/3/0/9",)]["negotiated_format"]) == ("senml-json", "senml-json")
