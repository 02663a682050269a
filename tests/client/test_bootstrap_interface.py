"""The client's Bootstrap interface without a network: Write, Read, Discover, Delete, Finish."""

from __future__ import annotations

import pytest

from aiolwm2m.client.bootstrap_interface import BootstrapInterface
from aiolwm2m.client.objects import (
    AccessControlInstance,
    DeviceInstance,
    SecurityInstance,
    ServerInstance,
    TemperatureInstance,
)
from aiolwm2m.client.tree import ObjectTree
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapRequestError
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ModelRegistry, decode_node, encode_node
from aiolwm2m.lwm2m.formats import decode_discover
from aiolwm2m.lwm2m.node_builder import build_node

CF = ContentFormat
MODEL = ModelRegistry.with_core_objects()


def setup() -> tuple[ObjectTree, BootstrapInterface, list[str]]:
    tree = ObjectTree()
    for cls in (SecurityInstance, ServerInstance, AccessControlInstance):
        tree.register_class(cls)
    tree.add(SecurityInstance(0, server_uri="coap://bs", bootstrap_server=True))
    tree.add(SecurityInstance(1, server_uri="coap://old", short_server_id=9))
    tree.add(ServerInstance(0, short_server_id=9))
    tree.add(DeviceInstance(0))
    tree.add(TemperatureInstance(0))
    finished: list[str] = []
    iface = BootstrapInterface(tree, lambda: finished.append("ok"),
                               on_refused=finished.append)
    return tree, iface, finished


def call(iface: BootstrapInterface, request: Message) -> Message:
    try:
        return iface.handle(request)
    except CoapRequestError as e:
        return request.response(e.code, e.diagnostic.encode(), 0)


def write(path: str, values: dict[int, object], fmt: int = CF.TLV) -> Message:
    p = LwM2MPath.parse(path)
    payload = encode_node(fmt, p, build_node(MODEL, p, values))
    return Message.request(Code.PUT, path, payload=payload, content_format=fmt)


def test_discover_lists_accounts() -> None:
    _, iface, _ = setup()
    resp = call(iface, Message.request(Code.GET, "/", accept=CF.LINK_FORMAT))
    assert resp.code == Code.CONTENT and resp.content_format == CF.LINK_FORMAT
    text = resp.payload.decode()
    assert text.startswith("</>;lwm2m=1.1,")
    links = {str(link.path): dict(link.other) for link in decode_discover(resp.payload)}
    assert links["/0/0"] == {"uri": "coap://bs"}  # the bootstrap account has no ssid
    assert links["/0/1"] == {"ssid": "9", "uri": "coap://old"}
    assert links["/1/0"] == {"ssid": "9"}
    assert "/3303/0" in links
    resp = call(iface, Message.request(Code.GET, "/1", accept=CF.LINK_FORMAT))
    assert [str(link.path) for link in decode_discover(resp.payload)] == ["/1", "/1/0"]


def test_delete_write_read_and_finish() -> None:
    tree, iface, finished = setup()
    assert call(iface, Message.request(Code.DELETE, "/0/0")).code == Code.BAD_REQUEST
    assert call(iface, Message.request(Code.DELETE, "/")).code == Code.DELETED
    # The bootstrap account and the single-instance Device object stay.
    assert [i.iid for i in tree.instances(0)] == [0]
    assert tree.instances(1) == [] and tree.get(3, 0) is not None
    assert tree.instances(3303) == []
    assert call(iface, Message.request(Code.POST, "/bs")).code == Code.NOT_ACCEPTABLE
    assert finished and "no LwM2M server account" in finished[-1]
    assert call(iface, write("/0/5", {0: "coap://new", 1: False, 2: 3, 10: 4})).code == (
        Code.CHANGED)
    assert call(iface, write("/1/2", {0: 4, 1: 60, 6: True, 7: "U"}, CF.SENML_CBOR)).code == (
        Code.CHANGED)
    # A read-only resource (Short Server ID) is writable by the bootstrap server.
    assert tree.get(1, 2).get(0) == 4  # type: ignore[union-attr]
    resp = call(iface, Message.request(Code.GET, "/1/2", accept=CF.SENML_JSON))
    node = decode_node(CF.SENML_JSON, resp.payload, LwM2MPath(1, 2))
    assert node.resources[1].value == 60  # type: ignore[union-attr]
    assert call(iface, Message.request(Code.GET, "/0")).code == Code.UNAUTHORIZED
    assert call(iface, Message.request(Code.GET, "/3/0")).code == Code.BAD_REQUEST
    assert call(iface, Message.request(Code.POST, "/bs")).code == Code.CHANGED
    assert finished[-1] == "ok"


@pytest.mark.parametrize(("request_", "code"), [
    (Message.request(Code.PUT, "/1/0", payload=b"x", content_format=50),
     Code.UNSUPPORTED_CONTENT_FORMAT),
    (Message.request(Code.PUT, "/1/0", payload=b"\xff", content_format=CF.TLV),
     Code.BAD_REQUEST),
    (Message.request(Code.PUT, "/", payload=b"", content_format=CF.TLV), Code.BAD_REQUEST),
    (Message.request(Code.DELETE, "/3/0/1"), Code.BAD_REQUEST),
    (Message.request(Code.GET, "/bs"), Code.METHOD_NOT_ALLOWED),
    (Message.request(Code.POST, "/1/0"), Code.METHOD_NOT_ALLOWED),
    (Message.request(Code.GET, "/1/0", accept=CF.TEXT), Code.NOT_ACCEPTABLE),
])
def test_bad_bootstrap_requests(request_: Message, code: int) -> None:
    _, iface, _ = setup()
    assert call(iface, request_).code == code
