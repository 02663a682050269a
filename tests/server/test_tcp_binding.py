"""LwM2M binding T: devices register over coap+tcp / coaps+tcp and are managed over their
own connection."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import ContentFormat, LwM2MPath, ResourceType, SingleResource
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.errors import RequestFailed
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tls import TlsClientSecurity

LINKS = b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>'


class Battery(Resource):
    observable = True
    level = 90

    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, str(self.level).encode(), 0)


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=0, tls_port=0, store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("tls-dev", psk_identity=b"tls-dev",
                                               psk_key=b"0123456789abcdef"))
    yield srv
    await srv.stop()


async def tcp_device(tls: TlsClientSecurity | None = None) -> tuple[TcpEndpoint, Battery]:
    site = Site()
    battery = Battery()
    site.add("3/0/9", battery)
    ep = await TcpEndpoint.create(listen=False, site=site, tls_client=tls)
    return ep, battery


def register(ep: str) -> Message:
    return Message.request(Code.POST, "/rd", query=[f"ep={ep}", "lt=60", "lwm2m=1.1", "b=T"],
                           payload=LINKS, content_format=40)


async def test_register_manage_observe_send_over_tcp(server: LwM2MServer) -> None:
    ep, battery = await tcp_device()
    remote = ("::1", server.port_of("tcp"))
    events = server.events.stream()
    try:
        resp = await ep.request(register("tcp-dev"), remote, timeout=5)
        assert resp.code == Code.CREATED
        reg = server.registrations["tcp-dev"]
        assert reg.binding == "T" and reg.transport == "tcp"
        read = await server.read("tcp-dev", "/3/0/9", format=ContentFormat.TEXT, timeout=5)
        assert read.content == SingleResource(9, ResourceType.INTEGER, 90)
        obs = await server.observe("tcp-dev", "/3/0/9", format=ContentFormat.TEXT, timeout=5)
        assert obs.code == Code.CONTENT
        battery.level = 55
        battery.notify()
        while True:
            ev = await events.next(5)
            if isinstance(ev, NotificationReceived):
                break
        assert ev.response.content == SingleResource(9, ResourceType.INTEGER, 55)
        send = Message.request(Code.POST, "/dp", content_format=ContentFormat.SENML_JSON,
                               payload=b'[{"n":"/3/0/9","v":12}]')
        assert (await ep.request(send, remote, timeout=5)).code == Code.CHANGED
        while True:
            ev = await events.next(5)
            if isinstance(ev, SendReceived):
                break
        assert ev.values[0].nodes[LwM2MPath(3, 0, 9)].value == 12  # type: ignore[union-attr]
    finally:
        await ep.close()
    # The connection is gone: the device is unreachable until it connects again, and the
    # server says so at once instead of waiting for a timeout.
    await asyncio.sleep(0.1)
    with pytest.raises(RequestFailed):
        await asyncio.wait_for(server.read("tcp-dev", "/3/0/9", timeout=5), 2)


async def test_register_over_tls_psk(server: LwM2MServer) -> None:
    ep, _ = await tcp_device(TlsClientSecurity(PskCredentials(b"tls-dev",
                                                              b"0123456789abcdef")))
    try:
        resp = await ep.request(register("tls-dev"), ("::1", server.port_of("tls")), timeout=5)
        assert resp.code == Code.CREATED
        reg = server.registrations["tls-dev"]
        assert reg.transport == "tls" and reg.identity == "psk:tls-dev"
        read = await server.read("tls-dev", "/3/0/9", format=ContentFormat.TEXT, timeout=5)
        assert read.code == Code.CONTENT
    finally:
        await ep.close()
    # Plain TCP cannot claim the secured name.
    ep, _ = await tcp_device()
    try:
        resp = await ep.request(register("tls-dev"), ("::1", server.port_of("tcp")), timeout=5)
        assert resp.code == Code.FORBIDDEN
    finally:
        await ep.close()


@pytest.mark.skipif(shutil.which("coap-client-openssl") is None,
                    reason="libcoap3-bin not installed")
async def test_libcoap_registers_over_coap_tcp(server: LwM2MServer) -> None:
    port = server.port_of("tcp")
    proc = await asyncio.create_subprocess_exec(
        "coap-client-openssl", "-B", "3", "-m", "post", "-t", "40", "-e", "</3/0>",
        f"coap+tcp://[::1]:{port}/rd?ep=libcoap-tcp&lt=60&b=T&lwm2m=1.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.wait_for(proc.communicate(), 20)
    # libcoap closes its connection when done; the registration itself stays.
    reg = server.registrations.get("libcoap-tcp")
    assert reg is not None and reg.transport == "tcp" and reg.binding == "T"
