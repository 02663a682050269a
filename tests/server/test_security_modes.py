"""The LwM2M server over DTLS in every mode, with identity binding, against our DTLS client
and libcoap's GnuTLS client."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import ContentFormat, ResourceType, SingleResource
from aiolwm2m.security.credentials import (
    CertificateUsage,
    PskCredentials,
    RpkCredentials,
    X509Credentials,
)
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.udp import UdpEndpoint

from ..security.pki import Pki, make_pki

KEY = bytes(range(16))
LINKS = b'</>;rt="oma.lwm2m",</1>;ver=1.1,</1/0>,</3/0>'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


class Manufacturer(Resource):
    def render_get(self, request: Message) -> RenderResult:
        return request.response(Code.CONTENT, b"Secure Devices Inc", 0)


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[LwM2MServer]:
    cfg = ServerConfig(host="::", port=0, coaps_port=0, store="memory",
                       dtls_rpk=RpkCredentials(pki.read("rpk_server.key")),
                       dtls_x509=pki.server_x509())
    srv = LwM2MServer(cfg)
    await srv.start()
    await srv.stores.security.put(SecurityInfo("psk-dev", psk_identity=b"psk-dev-id",
                                               psk_key=KEY))
    await srv.stores.security.put(SecurityInfo(
        "rpk-dev", rpk_public_key=RpkCredentials(pki.read("rpk_client.key")).public_key_der))
    await srv.stores.security.put(SecurityInfo("x509-dev", x509_identity="client1"))
    yield srv
    await srv.stop()


async def device(security: ClientSecurity, server: LwM2MServer
                 ) -> tuple[DtlsEndpoint, tuple[str, int]]:
    site = Site()
    site.add("3/0/0", Manufacturer())
    ep = await DtlsEndpoint.create("::1", 0, site=site, server_credentials=None)
    assert isinstance(ep, DtlsEndpoint)
    remote = await ep.secure(("::1", server.port_of("dtls")), security)
    return ep, remote


def register(ep: str) -> Message:
    return Message.request(Code.POST, "/rd", query=[f"ep={ep}", "lt=60", "lwm2m=1.1"],
                           payload=LINKS, content_format=40)


async def check_mode(server: LwM2MServer, security: ClientSecurity, endpoint: str,
                     identity_prefix: str) -> None:
    ep, remote = await device(security, server)
    try:
        resp = await ep.request(register(endpoint), remote, timeout=10)
        assert resp.code == Code.CREATED, resp.payload
        reg = server.registrations[endpoint]
        assert reg.transport == "dtls" and reg.identity is not None
        assert reg.identity.startswith(identity_prefix)
        # The server reaches the device back over the same DTLS session.
        read = await server.read(endpoint, "/3/0/0", format=ContentFormat.TEXT, timeout=5)
        assert read.content == SingleResource(0, ResourceType.STRING, "Secure Devices Inc")
        # An authenticated identity cannot take a name that has no credentials; the reason
        # goes to the operator, the peer only hears "forbidden".
        resp = await ep.request(register("someone-else"), remote, timeout=10)
        assert (resp.code, resp.payload) == (Code.FORBIDDEN, b"forbidden")
        assert server.refusals.by_reason["no-credentials"] == 1
    finally:
        await ep.close()


async def test_psk(server: LwM2MServer) -> None:
    await check_mode(server, ClientSecurity(PskCredentials(b"psk-dev-id", KEY)), "psk-dev",
                     "psk:psk-dev-id")


async def test_rpk(server: LwM2MServer, pki: Pki) -> None:
    security = ClientSecurity(RpkCredentials(pki.read("rpk_client.key")),
                              server_public_key=RpkCredentials(
                                  pki.read("rpk_server.key")).public_key_der)
    await check_mode(server, security, "rpk-dev", "rpk:")


async def test_x509(server: LwM2MServer, pki: Pki) -> None:
    security = ClientSecurity(X509Credentials(pki.read("client1_chain.pem"),
                                              pki.read("client1.key"), pki.read("root.pem"),
                                              CertificateUsage.CA_CONSTRAINT),
                              server_name="localhost")
    await check_mode(server, security, "x509-dev", "x509:client1")


async def test_identity_binding(server: LwM2MServer) -> None:
    refused = server.events.stream()
    # An unsecured client cannot use a name that has credentials, and is not told which
    # identity the name wants (that would list a fleet's PSK identities to anyone).
    async with await UdpEndpoint.create("::1", 0) as plain:
        resp = await plain.request(register("psk-dev"), ("::1", server.port), timeout=5)
        assert (resp.code, resp.payload) == (Code.FORBIDDEN, b"authentication required")
        resp = await plain.request(register("open-dev"), ("::1", server.port), timeout=5)
        assert resp.code == Code.CREATED
    # The operator is told, in the refusal's log line and event.
    ev = await refused.until(Refused, timeout=5)
    assert isinstance(ev, Refused)
    assert (ev.reason, ev.endpoint, ev.transport) == ("authentication-required", "psk-dev",
                                                      "udp")
    assert "psk:psk-dev-id" in ev.detail
    # An identity of one endpoint cannot register another endpoint that has credentials.
    await server.stores.security.put(SecurityInfo("psk-dev-2", psk_identity=b"other-id",
                                                  psk_key=KEY))
    ep, remote = await device(ClientSecurity(PskCredentials(b"psk-dev-id", KEY)), server)
    try:
        resp = await ep.request(register("psk-dev-2"), remote, timeout=10)
        assert resp.code == Code.FORBIDDEN
        resp = await ep.request(register("psk-dev"), remote, timeout=10)
        assert resp.code == Code.CREATED
        location = resp.location_path
    finally:
        await ep.close()
    # Nor update or de-register it from elsewhere: 4.04, as for an id nobody registered.
    async with await UdpEndpoint.create("::1", 0) as plain:
        resp = await plain.request(Message.request(Code.DELETE, "/" + "/".join(location)),
                                   ("::1", server.port), timeout=5)
        assert resp.code == Code.NOT_FOUND
    assert server.refusals.by_reason["wrong-transport"] == 1
    assert "psk-dev" in server.registrations


async def test_wrong_key_and_unknown_identity_fail_handshake(server: LwM2MServer) -> None:
    for creds in (PskCredentials(b"psk-dev-id", b"wrong key......."),
                  PskCredentials(b"nobody", KEY)):
        ep, remote = await device(ClientSecurity(creds), server)
        try:
            with pytest.raises((CoapError, TimeoutError)):
                await asyncio.wait_for(ep.request(register("psk-dev"), remote, timeout=3), 5)
        finally:
            await ep.close()
    assert "psk-dev" not in server.registrations


@pytest.mark.skipif(shutil.which("coap-client-gnutls") is None,
                    reason="libcoap3-bin not installed")
async def test_libcoap_client_registers_over_dtls_psk(server: LwM2MServer) -> None:
    await server.stores.security.put(SecurityInfo("libcoap-dev", psk_identity=b"libcoap-id",
                                                  psk_key=b"libcoap-secret-1"))
    port = server.port_of("dtls")
    proc = await asyncio.create_subprocess_exec(
        "coap-client-gnutls", "-B", "5", "-m", "post", "-t", "40", "-k", "libcoap-secret-1",
        "-u", "libcoap-id", "-e", "</3/0>",
        # IPv4: for an IPv6 literal libcoap's GnuTLS client sends it as SNI, which GnuTLS
        # servers refuse as a disallowed name.
        f"coaps://127.0.0.1:{port}/rd?ep=libcoap-dev&lt=60&b=U",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.wait_for(proc.communicate(), 20)
    reg = server.registrations.get("libcoap-dev")
    assert reg is not None and reg.identity == "psk:libcoap-id" and reg.transport == "dtls"
