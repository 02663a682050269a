"""Our RD registerer against libcoap's ``coap-rd`` (Debian's libcoap3-bin ships it as
``coap-rd-gnutls``, ``-openssl`` and ``-notls``): registration over coap://, coap+tcp://,
coaps:// and coaps+tcp:// with PSK and X.509 RD credentials.

libcoap 4.3's coap-rd does registration only: it answers an Update (``POST {location}``)
with 4.05, so the registerer refreshes by registering again; it has no simple
registration and no lookup; and a DELETE of a registration crashes it (a double free in
4.3.1), so these tests leave their registrations to lapse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aiolwm2m.client import ManualClock
from aiolwm2m.client.account_security import AccountSecurity
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.linkformat import parse_link_format
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.rd_client import RdRegistered, RdRegisterer, RdRegistration
from aiolwm2m.security import CertificateUsage, PskCredentials, X509Credentials
from aiolwm2m.transport.udp import UdpEndpoint
from tests.security.libcoap import coap_server
from tests.security.pki import Pki, make_pki

pytestmark = [pytest.mark.interop, pytest.mark.skipif(
    shutil.which("coap-rd-gnutls") is None,
    reason="libcoap3-bin's coap-rd-gnutls is not installed")]

FAST = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=3)
KEY = b"rd-interop-secret"
LINKS = '</sensors/temp>;rt="temperature";if="core.s"'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = Path(tmp_path_factory.mktemp("rd-libcoap-pki"))
    made = make_pki(d)
    # coap-rd's -c takes one PEM file with the certificate and its key.
    (d / "rd_cert_and_key.pem").write_bytes(made.read("server_direct.pem")
                                            + made.read("server_direct.key"))
    return made


def security_for(mode: str | None, pki: Pki) -> AccountSecurity | None:
    if mode == "psk":
        return AccountSecurity(PskCredentials(b"rd-interop-node", KEY))
    if mode == "x509":
        return AccountSecurity(X509Credentials(
            pki.read("client1_chain.pem"), pki.read("client1.key"), pki.read("root.pem"),
            CertificateUsage.CA_CONSTRAINT))
    return None


async def links_at(port: int, location: str) -> bytes:
    """What coap-rd holds at ``location``, read over plain coap."""
    ep = await UdpEndpoint.create("127.0.0.1", 0, params=FAST)
    try:
        response = await ep.request(Message.request(Code.GET, location),
                                    ("127.0.0.1", port), timeout=10)
    finally:
        await ep.close()
    assert response.code == Code.CONTENT
    return bytes(response.payload)


@pytest.mark.parametrize(("scheme", "mode"), [
    ("coap", None), ("coap+tcp", None), ("coaps", "psk"), ("coaps", "x509"),
    ("coaps+tcp", "psk"), ("coaps+tcp", "x509"),
])
async def test_registers_and_refreshes_by_registering_again(pki: Pki, scheme: str,
                                                           mode: str | None) -> None:
    args = ["-k", KEY.decode(), "-c", str(pki.path("rd_cert_and_key.pem")),
            "-C", str(pki.path("root.pem"))]
    async with coap_server("coap-rd-gnutls", args) as secure_port:
        plain_port = secure_port - 1
        port = secure_port if mode is not None else plain_port
        # X.509: the RD's certificate names "localhost".
        host = "localhost" if mode == "x509" else "127.0.0.1"
        clock = ManualClock()
        r = RdRegisterer(f"{scheme}://{host}:{port}",
                         RdRegistration.build("libcoap-node", lifetime=120, links=LINKS),
                         security=security_for(mode, pki), transmission=FAST,
                         request_timeout=10.0, clock=clock)
        stream = r.events.stream()
        await r.start()
        try:
            first = await stream.until(RdRegistered, timeout=20)
            assert isinstance(first, RdRegistered) and first.location.startswith("/rd/")
            assert r._registration_path == ("rd",)  # discovered in /.well-known/core
            held = await links_at(plain_port, first.location)
            assert parse_link_format(held) == parse_link_format(LINKS)
            await clock.advance(120.0)
            again = await stream.until(RdRegistered, timeout=20)
            assert isinstance(again, RdRegistered)
            assert r.updates_unsupported and r.registered
            await links_at(plain_port, again.location)
        finally:
            await r.close(unregister=False)
