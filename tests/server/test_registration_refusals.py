"""The registration interface's refusals (counted by reason, logged with the endpoint name,
emitted as Refused events) and its log of registrations, over real UDP with aiocoap."""

from __future__ import annotations

import logging
import re

import aiocoap
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import Refused
from tests.fake_clock import FakeClock

from .aiocoap_device import AiocoapDevice
from .conftest import uri


async def post(device: AiocoapDevice, url: str, payload: bytes = b"",
               cf: int | None = None) -> aiocoap.Message:
    assert device.context is not None
    msg = aiocoap.Message(code=C.POST, uri=url, payload=payload)
    if cf is not None:
        msg.opt.content_format = cf
    return await device.context.request(msg).response


def refused_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiolwm2m.server.refusals"]


async def test_refused_registrations_are_counted_logged_and_emitted(
        server: LwM2MServer, device: AiocoapDevice, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "aiolwm2m.server.refusals")
    events = server.events.stream()
    base = uri(server)
    cases = [("rd?lt=60&lwm2m=1.1", C.BAD_REQUEST, "bad-request", None),
             ("rd?ep=new-dev&lwm2m=1.2", C.PRECONDITION_FAILED, "unsupported-version",
              "new-dev"),
             ("rd/not-an-id?lt=60", C.NOT_FOUND, "unknown-registration", None)]
    for query, code, reason, endpoint in cases:
        resp = await post(device, f"{base}/{query}")
        assert resp.code == code, query
        ev = await events.until(Refused, timeout=5)
        assert isinstance(ev, Refused)
        assert (ev.reason, ev.endpoint, ev.transport) == (reason, endpoint, "udp")
    resp = await post(device, f"{base}/rd?ep=json-dev&lwm2m=1.1", b"{}", cf=50)
    assert resp.code == C.UNSUPPORTED_CONTENT_FORMAT
    assert dict(server.refusals.by_reason) == {
        "bad-request": 1, "unsupported-version": 1, "unknown-registration": 1,
        "unsupported-content-format": 1}
    lines = refused_lines(caplog)
    assert len(lines) == 4
    assert re.fullmatch(r"refused new-dev \(unsupported-version\) on udp from ::1:\d+: "
                        r"LwM2M version \W?1\.2\W? not supported.*", lines[1]), lines[1]
    # An Update with a bad parameter names the registration's endpoint in the log.
    assert (await device.register(base)).code == C.CREATED
    assert (await device.update("lt=abc")).code == C.BAD_REQUEST
    assert "refused dev-1 (bad-request)" in refused_lines(caplog)[-1]


async def test_refused_sends_are_counted(server: LwM2MServer, device: AiocoapDevice) -> None:
    device.server_uri = uri(server)
    assert (await device.send(["/3/0/9"])).code == C.NOT_FOUND
    await device.register(uri(server))
    bad = await post(device, f"{uri(server)}/dp", b"{}", cf=50)
    assert bad.code == C.UNSUPPORTED_CONTENT_FORMAT
    bad = await post(device, f"{uri(server)}/dp", b"[{]", cf=110)
    assert bad.code == C.BAD_REQUEST
    assert dict(server.refusals.by_reason) == {
        "unknown-registration": 1, "unsupported-content-format": 1, "bad-request": 1}


async def test_registration_changes_are_logged_with_the_endpoint(
        server: LwM2MServer, device: AiocoapDevice, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "aiolwm2m.server.server")

    def lines() -> list[tuple[str, str]]:
        out = [(r.levelname, r.getMessage()) for r in caplog.records
               if r.name == "aiolwm2m.server.server"]
        caplog.clear()
        return out

    assert (await device.register(uri(server), lifetime=60)).code == C.CREATED
    first = server.registrations["dev-1"]
    port = first.address[1]
    assert lines() == [("INFO", f"registered dev-1 id={first.id} over udp from ::1:{port} "
                                "lt=60")]
    assert (await device.update("lt=70")).code == C.CHANGED
    assert lines() == [("DEBUG", f"updated dev-1 id={first.id} over udp from ::1:{port} "
                                 "lt=70")]
    assert (await device.register(uri(server), lifetime=60)).code == C.CREATED
    second = server.registrations["dev-1"]
    assert lines() == [("INFO", f"registered dev-1 id={second.id} over udp from ::1:{port} "
                                f"lt=60, replacing id={first.id} (udp from ::1:{port})")]
    clock.advance(61)
    await server.tick()
    assert lines() == [("INFO", f"expired dev-1 id={second.id} over udp from ::1:{port} "
                                "lt=60")]
    assert (await device.register(uri(server))).code == C.CREATED
    third = server.registrations["dev-1"]
    lines()
    assert (await device.deregister()).code == C.DELETED
    assert lines() == [("INFO", f"deregistered dev-1 id={third.id} over udp from "
                                f"::1:{port} lt=300")]


async def test_nothing_is_logged_when_the_level_is_off(
        server: LwM2MServer, device: AiocoapDevice, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "aiolwm2m.server.server")
    assert (await device.register(uri(server))).code == C.CREATED
    assert (await device.update()).code == C.CHANGED
    assert not [r for r in caplog.records if r.name == "aiolwm2m.server.server"]
