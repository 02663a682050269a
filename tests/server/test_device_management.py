"""Every device-management operation and format, server to aiocoap device over UDP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MObject,
    LwM2MPath,
    MultipleResource,
    ObjectInstance,
    ResourceInstance,
    ResourceType,
    SingleResource,
)
from aiolwm2m.server import LwM2MServer, NotRegistered

from .aiocoap_device import AiocoapDevice, device_instance
from .conftest import uri

CF = ContentFormat
NODE_FORMATS = [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_JSON, CF.LWM2M_CBOR]


@pytest.fixture
async def registered(server: LwM2MServer, device: AiocoapDevice
                     ) -> AsyncIterator[AiocoapDevice]:
    resp = await device.register(uri(server))
    assert resp.code == C.CREATED
    yield device


@pytest.mark.parametrize("fmt", [None, *NODE_FORMATS])
async def test_read_instance_every_format(server: LwM2MServer, registered: AiocoapDevice,
                                          fmt: int | None) -> None:
    resp = await server.read("dev-1", "/3/0", format=fmt)
    assert resp.code == Code.CONTENT
    assert resp.format == (fmt if fmt is not None else CF.SENML_CBOR)
    assert resp.content == device_instance()


async def test_read_levels(server: LwM2MServer, registered: AiocoapDevice) -> None:
    resp = await server.read("dev-1", "/3")
    assert isinstance(resp.content, LwM2MObject) and resp.content.instances[0] == \
        device_instance()
    resp = await server.read("dev-1", "/3/0/0", format=CF.TEXT)
    assert resp.content == SingleResource(0, ResourceType.STRING, "aiocoap-works")
    resp = await server.read("dev-1", "/3/0/7", format=CF.TLV)
    assert resp.content == MultipleResource(7, ResourceType.INTEGER, {0: 3800, 1: 5000})
    resp = await server.read("dev-1", "/3/0/7/1", format=CF.SENML_JSON)
    assert resp.content == ResourceInstance(1, ResourceType.INTEGER, 5000)
    resp = await server.read("dev-1", "/3/0/9", format=CF.CBOR)
    assert resp.content == SingleResource(9, ResourceType.INTEGER, 87)
    resp = await server.read("dev-1", "/3/0/42")
    assert resp.code == Code.NOT_FOUND and not resp.success and resp.content is None
    with pytest.raises(NotRegistered):
        await server.read("nobody", "/3/0")


async def test_discover(server: LwM2MServer, registered: AiocoapDevice) -> None:
    await server.write_attributes("dev-1", "/3/0/9", pmin=10, pmax=60)
    resp = await server.discover("dev-1", "/3/0")
    assert resp.code == Code.CONTENT
    by_path = {str(link.path): link for link in resp.links}
    assert by_path["/3/0/7"].dim == 2
    assert by_path["/3/0/9"].attributes.pmin == 10 and by_path["/3/0/9"].attributes.pmax == 60


@pytest.mark.parametrize("fmt", [None, CF.TEXT, *NODE_FORMATS])
async def test_write_resource(server: LwM2MServer, registered: AiocoapDevice,
                              fmt: int | None) -> None:
    resp = await server.write("dev-1", "/3/0/14", "-05:00", format=fmt)
    assert resp.code == Code.CHANGED, resp
    inst = registered.state.objects[3][0]
    assert inst.resources[14] == SingleResource(14, ResourceType.STRING, "-05:00")


async def test_write_instance_replace_and_update(server: LwM2MServer,
                                                 registered: AiocoapDevice) -> None:
    resp = await server.write("dev-1", "/3303/0", {5700: 30.25}, replace=False)
    assert resp.code == Code.CHANGED
    inst = registered.state.objects[3303][0]
    assert inst.resources[5700] == SingleResource(5700, ResourceType.FLOAT, 30.25)
    assert 5701 in inst.resources  # partial update kept the other resource
    resp = await server.write("dev-1", "/3303/0", {5700: 1.5}, replace=True)
    assert resp.code == Code.CHANGED
    assert set(registered.state.objects[3303][0].resources) == {5700}


async def test_write_resource_instance_and_multiple(server: LwM2MServer,
                                                    registered: AiocoapDevice) -> None:
    resp = await server.write("dev-1", "/3/0/7/1", 4200, format=CF.SENML_CBOR)
    assert resp.code == Code.CHANGED
    res = registered.state.objects[3][0].resources[7]
    assert isinstance(res, MultipleResource) and res.instances == {0: 3800, 1: 4200}
    resp = await server.write("dev-1", "/3/0/7", {0: 1, 1: 2, 2: 3})
    assert resp.code == Code.CHANGED
    res = registered.state.objects[3][0].resources[7]
    assert isinstance(res, MultipleResource) and res.instances == {0: 1, 1: 2, 2: 3}


async def test_write_wrong_type_is_refused_locally(server: LwM2MServer,
                                                   registered: AiocoapDevice) -> None:
    from aiolwm2m.lwm2m import InvalidValue

    with pytest.raises(InvalidValue):
        await server.write("dev-1", "/3/0/9", "not a number")


async def test_write_attributes_and_execute(server: LwM2MServer,
                                            registered: AiocoapDevice) -> None:
    resp = await server.write_attributes("dev-1", "/3303/0/5700", pmin=5, pmax=30, gt=25.5)
    assert resp.code == Code.CHANGED
    assert sorted(registered.state.attributes["/3303/0/5700"]) == ["gt=25.5", "pmax=30",
                                                                   "pmin=5"]
    resp = await server.execute("dev-1", "/3/0/4", "0='now'")
    assert resp.code == Code.CHANGED
    assert registered.state.executed == [("/3/0/4", "0='now'")]
    resp = await server.execute("dev-1", "/3/0/0")
    assert resp.code == Code.METHOD_NOT_ALLOWED


async def test_create_and_delete(server: LwM2MServer, registered: AiocoapDevice) -> None:
    resp = await server.create("dev-1", "/3303", {5700: 18.0, 5701: "Cel"}, instance_id=7)
    assert resp.code == Code.CREATED and resp.location == LwM2MPath(3303, 7)
    assert registered.state.objects[3303][7] == ObjectInstance.from_resources(7, [
        SingleResource(5700, ResourceType.FLOAT, 18.0),
        SingleResource(5701, ResourceType.STRING, "Cel")])
    resp = await server.delete("dev-1", "/3303/7")
    assert resp.code == Code.DELETED
    assert 7 not in registered.state.objects[3303]
    resp = await server.delete("dev-1", "/3303/7")
    assert resp.code == Code.NOT_FOUND


@pytest.mark.parametrize("fmt", [None, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR])
async def test_read_composite(server: LwM2MServer, registered: AiocoapDevice,
                              fmt: int | None) -> None:
    resp = await server.read_composite("dev-1", ["/3/0/0", "/3/0/9", "/3303/0"], format=fmt)
    assert resp.code == Code.CONTENT, resp
    assert resp.content[LwM2MPath(3, 0, 0)] == SingleResource(0, ResourceType.STRING,
                                                               "aiocoap-works")
    assert resp.content[LwM2MPath(3, 0, 9)] == SingleResource(9, ResourceType.INTEGER, 87)
    inst = resp.content[LwM2MPath(3303, 0)]
    assert isinstance(inst, ObjectInstance) and inst.resources[5700].value == 21.5  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", [CF.SENML_JSON, CF.SENML_CBOR])
async def test_write_composite(server: LwM2MServer, registered: AiocoapDevice,
                               fmt: int) -> None:
    resp = await server.write_composite("dev-1", {"/3/0/14": "+09:00", "/3303/0/5700": 5.5},
                                        format=fmt)
    assert resp.code == Code.CHANGED
    assert registered.state.objects[3][0].resources[14].value == "+09:00"  # type: ignore[union-attr]
    assert registered.state.objects[3303][0].resources[5700].value == 5.5  # type: ignore[union-attr]


async def test_request_to_gone_device_times_out(server: LwM2MServer,
                                                registered: AiocoapDevice) -> None:
    from aiolwm2m.server.errors import RequestFailed

    await registered.stop()
    with pytest.raises(RequestFailed):
        await server.read("dev-1", "/3/0", timeout=0.5)
