"""The object versions a device announced, and what the server does with values and Creates
that do not fit them: a resource of another version, a Create that leaves the id to the device.

The device is aiocoap (tests/server/aiocoap_device.py); the REST API runs on real sockets.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import Link, format_link_format
from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MPath,
    ObjectInstance,
    ResourceType,
    SingleResource,
)
from aiolwm2m.lwm2m.operations import ReadResponse
from aiolwm2m.server import LwM2MServer
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from .aiocoap_device import AiocoapDevice
from .conftest import uri

CF = ContentFormat
T = ResourceType
TOKEN = "test-token-0123456789"


class CellularDevice(AiocoapDevice):
    """Announces Cellular Connectivity 1.1 (``</10>;ver=1.1``) yet answers with resource 6,
    which only version 1.0 defines; Device (3) is listed without a version."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        self.state.objects[10] = {0: ObjectInstance.from_resources(0, [
            SingleResource(0, T.STRING, "apn"), SingleResource(1, T.INTEGER, 30),
            SingleResource(6, T.INTEGER, 5)])}

    def object_links(self) -> bytes:
        links = [Link("/", [("rt", "oma.lwm2m"), ("ct", "60 110 112 11542 11543 11544")]),
                 Link("/1", [("ver", "1.1")]), Link("/10", [("ver", "1.1")])]
        for oid in sorted(self.state.objects):
            links.extend(Link(f"/{oid}/{iid}") for iid in sorted(self.state.objects[oid]))
        return format_link_format(links).encode()


@pytest.fixture
async def cellular(server: LwM2MServer) -> AsyncIterator[AiocoapDevice]:
    dev = CellularDevice("cell-1")
    await dev.start()
    assert (await dev.register(uri(server))).code == C.CREATED
    yield dev
    await dev.stop()


@pytest.mark.parametrize("fmt", [None, CF.TLV, CF.SENML_JSON, CF.LWM2M_CBOR])
async def test_read_keeps_a_resource_of_another_version(
        server: LwM2MServer, cellular: AiocoapDevice, fmt: int | None,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aiolwm2m.server.unknown_resources"):
        first = await server.read("cell-1", "/10", format=fmt)
        second = await server.read("cell-1", "/10/0", format=fmt)
    assert first.code == Code.CONTENT, first.diagnostic
    instance = first.content.instances[0]  # type: ignore[union-attr]
    assert instance.resources[0] == SingleResource(0, T.STRING, "apn")
    assert instance.resources[1] == SingleResource(1, T.INTEGER, 30)
    # TLV carries no types: the unknown value is its raw bytes.
    expected = b"\x05" if fmt == CF.TLV else 5
    assert instance.resources[6].value == expected
    assert first.unknown == (LwM2MPath(10, 0, 6),) == second.unknown
    assert isinstance(second, ReadResponse) and second.content == instance
    # Logged once, with the endpoint, however often it comes back.
    lines = [r.getMessage() for r in caplog.records if "defines no resource 6" in r.getMessage()]
    assert len(lines) == 1 and "cell-1" in lines[0] and "version 1.1" in lines[0]


async def test_announced_versions_everywhere(server: LwM2MServer, cellular: AiocoapDevice
                                             ) -> None:
    model = server.context("cell-1").model
    assert model.get(10).version == "1.1"  # type: ignore[union-attr]
    assert model.get(3303).version == "1.0"  # listed without ver=: 1.0, not the newest
    web = WebServer(create_app(server, [TOKEN]), "127.0.0.1", 0)
    await web.start()
    try:
        async with httpx.AsyncClient(base_url=web.url, timeout=20,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            objects = {o["id"]: o for o in
                       (await http.get("/api/registrations/cell-1/objects")).json()}
            assert objects[10]["version"] == "1.1" and objects[3303]["version"] == "1.0"
            assert 6 not in {r["id"] for r in objects[10]["resources"]}
            # Temperature 1.0 has no Application Type (5750, 1.1 on).
            assert 5750 not in {r["id"] for r in objects[3303]["resources"]}
            read = (await http.get("/api/clients/cell-1/read", params={"path": "/10/0"})).json()
            flags = {v["path"]: v.get("unknown", False) for v in read["values"]}
            assert flags == {"/10/0/0": False, "/10/0/1": False, "/10/0/6": True}
    finally:
        await web.stop()


@pytest.mark.parametrize(("fmt", "top_level"), [
    (CF.TLV, lambda p: p[0] >> 6 == 3),  # a resource TLV first, no object instance TLV
    (CF.SENML_JSON, lambda p: b'"bn":"/3303/"' in p),  # names /3303/r: no instance
    (CF.LWM2M_CBOR, lambda p: p.startswith(b"\xa1\x19\x0c\xe7")),  # {3303: ...}
])
async def test_create_leaves_the_id_to_the_device(server: LwM2MServer, device: AiocoapDevice,
                                                  fmt: int, top_level: object) -> None:
    assert (await device.register(uri(server))).code == C.CREATED
    resp = await server.create("dev-1", "/3303", {5700: 18.0, 5701: "Cel"}, format=fmt)
    assert resp.code == Code.CREATED, resp.diagnostic
    # The device had instance 0: it picked 1, and the response says so.
    assert resp.instance_id == 1 and resp.location == LwM2MPath(3303, 1)
    assert top_level(device.state.creates[-1])  # type: ignore[operator]
    assert device.state.objects[3303][1].resources[5700] == SingleResource(5700, T.FLOAT, 18.0)
    named = await server.create("dev-1", "/3303", {5700: 1.0}, instance_id=5, format=fmt)
    assert named.instance_id == 5 and 5 in device.state.objects[3303]
