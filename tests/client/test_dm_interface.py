"""The Device Management interface without a network: request in, response (code, format,
payload) out, bad input included."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.client.access_rights import AccessRights
from aiolwm2m.client.attribute_store import AttributeStore
from aiolwm2m.client.dm_interface import DeviceManagement
from aiolwm2m.client.objects import (
    AccessControlInstance,
    DeviceInstance,
    SecurityInstance,
    ServerInstance,
    TemperatureInstance,
)
from aiolwm2m.client.observations import ObservationEngine
from aiolwm2m.client.tree import ObjectTree
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import (
    ContentFormat,
    LwM2MPath,
    NotificationAttributes,
    ResourceType,
    SingleResource,
    decode_composite,
    decode_node,
    encode_composite,
    encode_node,
    encode_paths,
)
from aiolwm2m.lwm2m.formats import decode_discover

CF = ContentFormat


def make_dm() -> DeviceManagement:
    tree = ObjectTree()
    for cls in (SecurityInstance, ServerInstance, AccessControlInstance):
        tree.register_class(cls)
    tree.add(SecurityInstance(0, server_uri="coap://x", short_server_id=1))
    tree.add(ServerInstance(0, short_server_id=1, lifetime=60))
    tree.add(DeviceInstance(0, serial_number="SN1"))
    tree.add(TemperatureInstance(0))
    store = AttributeStore()
    engine = ObservationEngine(lambda s, p: store.effective(s, p), tree.numeric_value)
    return DeviceManagement(tree, store, engine, AccessRights(tree),
                            lambda ssid: NotificationAttributes())


def call(dm: DeviceManagement, request: Message) -> Message:
    try:
        result = dm.handle(request, 1, ("peer", 1), 0.0)
    except CoapRequestError as e:
        return request.response(e.code, e.diagnostic.encode(), 0)
    if isinstance(result, Message):
        return result
    return asyncio.get_event_loop().run_until_complete(result)  # pragma: no cover


def req(method: int, path: str, **kw: object) -> Message:
    return Message.request(method, path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [CF.TLV, CF.SENML_JSON, CF.SENML_CBOR, CF.LWM2M_CBOR,
                                 CF.LWM2M_JSON])
def test_read_in_every_format(fmt: int) -> None:
    dm = make_dm()
    resp = call(dm, req(Code.GET, "/3/0", accept=fmt))
    assert resp.code == Code.CONTENT and resp.content_format == fmt
    node = decode_node(fmt, resp.payload, LwM2MPath(3, 0), dm.tree.model)
    assert node.resources[2].value == "SN1"  # type: ignore[union-attr]


def test_single_value_formats_and_default() -> None:
    dm = make_dm()
    resp = call(dm, req(Code.GET, "/3/0/2", accept=CF.TEXT))
    assert (resp.code, resp.content_format, resp.payload) == (Code.CONTENT, 0, b"SN1")
    resp = call(dm, req(Code.GET, "/3303/0/5700"))
    assert resp.content_format == CF.TLV  # no Accept: TLV, which every server reads
    assert call(dm, req(Code.GET, "/3/0", accept=CF.TEXT)).code == Code.NOT_ACCEPTABLE
    assert call(dm, req(Code.GET, "/3/0", accept=50)).code == Code.NOT_ACCEPTABLE


@pytest.mark.parametrize(("request_", "code"), [
    (req(Code.GET, "/0/0"), Code.UNAUTHORIZED),          # Security object is hidden
    (req(Code.GET, "/99"), Code.NOT_FOUND),
    (req(Code.GET, "/3/7"), Code.NOT_FOUND),
    (req(Code.GET, "/3/0/99"), Code.NOT_FOUND),
    (req(Code.GET, "/abc"), Code.NOT_FOUND),              # not an LwM2M path
    (req(Code.GET, "/"), Code.METHOD_NOT_ALLOWED),
    (req(Code.GET, "/3/0/4"), Code.METHOD_NOT_ALLOWED),   # Reboot is executable
    (req(Code.PUT, "/3/0/0", payload=b"x", content_format=0), Code.METHOD_NOT_ALLOWED),
    (req(Code.POST, "/3/0/0"), Code.METHOD_NOT_ALLOWED),  # not executable
    (req(Code.DELETE, "/3/0"), Code.METHOD_NOT_ALLOWED),
    (req(Code.DELETE, "/3303"), Code.METHOD_NOT_ALLOWED),
    (req(Code.PUT, "/3/0/14", payload=b"x", content_format=50),
     Code.UNSUPPORTED_CONTENT_FORMAT),
    (req(Code.PUT, "/3/0/14", payload=b"x"), Code.BAD_REQUEST),  # no Content-Format
    (req(Code.PUT, "/3/0/14", payload=b"\xff\xff", content_format=CF.TLV), Code.BAD_REQUEST),
    (req(Code.PUT, "/3/0", query=["pmin=abc"]), Code.BAD_REQUEST),
    (req(Code.PUT, "/3/0", query=["gt=5"]), Code.BAD_REQUEST),  # gt only on resources
    (req(Code.PUT, "/3/0/99", query=["pmin=1"]), Code.NOT_FOUND),
    (req(Code.PATCH, "/3/0"), Code.METHOD_NOT_ALLOWED),
    (req(Code.FETCH, "/3", payload=b"[]", content_format=CF.SENML_JSON),
     Code.METHOD_NOT_ALLOWED),
    (req(Code.FETCH, "/", payload=b"x", content_format=CF.TLV),
     Code.UNSUPPORTED_CONTENT_FORMAT),
    (req(Code.FETCH, "/", payload=b"[{]", content_format=CF.SENML_JSON), Code.BAD_REQUEST),
    (req(Code.FETCH, "/", payload=encode_paths(CF.SENML_JSON, [LwM2MPath(3, 0, 0)]),
         content_format=CF.SENML_JSON, accept=CF.TLV), Code.NOT_ACCEPTABLE),
    (req(Code.IPATCH, "/", payload=b"x", content_format=CF.TLV),
     Code.UNSUPPORTED_CONTENT_FORMAT),
    (req(Code.POST, "/3303", payload=b"\x00", content_format=42), Code.UNSUPPORTED_CONTENT_FORMAT),
])
def test_error_codes(request_: Message, code: int) -> None:
    resp = call(make_dm(), request_)
    assert resp.code == code, resp.payload
    assert resp.payload  # every rejection says why


def test_write_execute_create_delete() -> None:
    dm = make_dm()
    payload = encode_node(CF.SENML_CBOR, LwM2MPath(3, 0, 14),
                          SingleResource(14, ResourceType.STRING, "+02:00"))
    resp = call(dm, req(Code.PUT, "/3/0/14", payload=payload, content_format=CF.SENML_CBOR))
    assert resp.code == Code.CHANGED
    assert dm.tree.get(3, 0).get(14) == "+02:00"  # type: ignore[union-attr]
    create = encode_node(CF.TLV, LwM2MPath(3303), decode_node(
        CF.SENML_JSON, b'[{"bn":"/3303/4/","n":"5700","v":1.5}]', LwM2MPath(3303),
        dm.tree.model))
    resp = call(dm, req(Code.POST, "/3303", payload=create, content_format=CF.TLV))
    assert resp.code == Code.CREATED and resp.location_path == ("3303", "4")
    assert call(dm, req(Code.POST, "/3303", payload=create,
                        content_format=CF.TLV)).code == Code.BAD_REQUEST  # exists
    assert call(dm, req(Code.DELETE, "/3303/4")).code == Code.DELETED
    assert call(dm, req(Code.DELETE, "/3303/4")).code == Code.NOT_FOUND
    result = dm.handle(req(Code.POST, "/3/0/4"), 1, "p", 0.0)
    assert not isinstance(result, Message)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(result).code == Code.CHANGED  # type: ignore[arg-type]
    finally:
        loop.close()
    assert dm.tree.get(3, 0).reboots == 1  # type: ignore[union-attr]


def test_composite_read_write_and_discover() -> None:
    dm = make_dm()
    paths = [LwM2MPath(3, 0, 2), LwM2MPath(3303, 0, 5700), LwM2MPath(3, 0, 99)]
    resp = call(dm, req(Code.FETCH, "/", payload=encode_paths(CF.SENML_CBOR, paths),
                        content_format=CF.SENML_CBOR, accept=CF.SENML_JSON))
    assert resp.code == Code.CONTENT and resp.content_format == CF.SENML_JSON
    values = decode_composite(CF.SENML_JSON, resp.payload)
    assert values[LwM2MPath(3, 0, 2)].value == "SN1"  # type: ignore[union-attr]
    assert LwM2MPath(3, 0, 99) not in values  # a missing path is left out
    body = encode_composite(CF.SENML_CBOR, {
        LwM2MPath(3, 0, 14): SingleResource(14, ResourceType.STRING, "-01:00"),
        LwM2MPath(1, 0, 1): SingleResource(1, ResourceType.INTEGER, 99)})
    resp = call(dm, req(Code.IPATCH, "/", payload=body, content_format=CF.SENML_CBOR))
    assert resp.code == Code.CHANGED
    assert dm.tree.get(1, 0).get(1) == 99  # type: ignore[union-attr]
    bad = encode_composite(CF.SENML_CBOR, {
        LwM2MPath(3, 0, 0): SingleResource(0, ResourceType.STRING, "x")})
    assert call(dm, req(Code.IPATCH, "/", payload=bad,
                        content_format=CF.SENML_CBOR)).code == Code.METHOD_NOT_ALLOWED
    assert call(dm, req(Code.PUT, "/3/0/9", query=["pmin=5"])).code == Code.NOT_FOUND
    assert call(dm, req(Code.PUT, "/3303/0/5700", query=["pmin=5", "gt=30"])).code == (
        Code.CHANGED)
    resp = call(dm, req(Code.GET, "/3303/0", accept=CF.LINK_FORMAT))
    assert resp.content_format == CF.LINK_FORMAT
    links = {str(link.path): link for link in decode_discover(resp.payload)}
    assert links["/3303/0/5700"].attributes.gt == 30.0
    assert "/3303/0/5605" in links
    resp = call(dm, req(Code.GET, "/3/0", accept=CF.LINK_FORMAT))
    links = {str(link.path): link for link in decode_discover(resp.payload)}
    assert links["/3/0/11"].dim == 1


def test_observe_registers_and_cancels() -> None:
    dm = make_dm()
    r = req(Code.GET, "/3303/0/5700", observe=0, token=b"tok")
    assert call(dm, r).code == Code.CONTENT
    assert len(dm.observations) == 1
    call(dm, r)  # re-rendering the same request (a notification) registers nothing new
    assert len(dm.observations) == 1
    assert call(dm, req(Code.GET, "/3303/0/5700", observe=1, token=b"tok")).code == (
        Code.CONTENT)
    assert len(dm.observations) == 0
    assert call(dm, req(Code.GET, "/3/0/77", observe=0, token=b"x")).code == Code.NOT_FOUND
    assert len(dm.observations) == 0
