"""Who a device is over HTTP/2: TLS with ALPN h2 and X.509 client certificates bound to the
endpoint as over coaps+tcp (our client and curl), h2c bearer tokens made of a PSK, and the
refusals when either is wrong."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.http2.bearer import bearer_token
from aiolwm2m.security.credentials import CertificateUsage, PskCredentials, X509Credentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo

from ..security.pki import Pki, make_pki
from .raw_device import RawH2, register_headers

KEY = bytes(range(16))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory",
                                   dtls_x509=pki.server_x509()))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("x509-dev", x509_identity="client1"))
    yield srv
    await srv.stop()


@pytest.fixture
async def h2c_server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("psk-dev", psk_identity=b"psk-dev-id",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


async def test_https_x509_client_bound_to_its_endpoint(tls_server: LwM2MServer,
                                                        pki: Pki) -> None:
    assert tls_server.transports["http2"].scheme == "https"  # type: ignore[attr-defined]
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    client = LwM2MClient(ClientConfig.development(
        "x509-dev", f"https://localhost:{tls_server.port_of('http2')}",
        development_security=creds, host="127.0.0.1"))
    await client.start()
    try:
        await client.wait_registered(10)
        reg = tls_server.registrations["x509-dev"]
        assert (reg.transport, reg.binding, reg.identity) == ("http2", "H", "x509:client1")
        read = await tls_server.read("x509-dev", "/3/0/0", timeout=5)
        assert read.code == Code.CONTENT
    finally:
        await client.stop()


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is needed")
async def test_curl_over_tls_with_alpn_h2(tls_server: LwM2MServer, pki: Pki) -> None:
    port = tls_server.port_of("http2")
    url = f"https://localhost:{port}/rd?ep=x509-dev&lt=60&lwm2m=1.1&b=H"
    common = ["curl", "-sS", "--max-time", "10", "--cacert", str(pki.path("root.pem")),
              "--cert", str(pki.path("client1_chain.pem")), "--key",
              str(pki.path("client1.key")), "-o", "/dev/null", "-w", "%{http_code} "
              "%{http_version}", "-X", "POST", "-H", "content-type: application/link-format",
              "--data-binary", "</3/0>"]
    proc = await asyncio.create_subprocess_exec(*common, "--http2", url,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert out.decode() == "201 2", err.decode()
    assert tls_server.registrations["x509-dev"].identity == "x509:client1"
    # HTTP/1.1 over TLS: ALPN offers only http/1.1, the handshake is refused.
    proc = await asyncio.create_subprocess_exec(*common, "--http1.1", url,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode != 0 and out.decode().startswith("000")


async def test_h2c_bearer_token(h2c_server: LwM2MServer) -> None:
    client = LwM2MClient(ClientConfig.development(
        "psk-dev", f"http2://127.0.0.1:{h2c_server.port_of('http2')}",
        development_security=PskCredentials(b"psk-dev-id", KEY), host="127.0.0.1"))
    await client.start()
    try:
        await client.wait_registered(10)
        reg = h2c_server.registrations["psk-dev"]
        assert reg.identity == "psk:psk-dev-id"
        assert (await h2c_server.read("psk-dev", "/3/0/0", timeout=5)).code == Code.CONTENT
    finally:
        await client.stop()


async def test_wrong_or_missing_credentials_are_refused(h2c_server: LwM2MServer) -> None:
    events = h2c_server.events.stream()
    port = h2c_server.port_of("http2")
    target = "/rd?ep=psk-dev&lt=60&lwm2m=1.1&b=H"
    raw = await RawH2.open("127.0.0.1", port)
    try:
        # No credentials for an endpoint that has some: 403, without naming them.
        state = await raw.exchange("POST", target, register_headers(), b"</3/0>")
        assert (state.status, bytes(state.body)) == (403, b"authentication required")
        # A wrong key: 401, and the connection is closed (one guess per connection).
        wrong = bearer_token(b"psk-dev-id", b"0" * 16)
        state = await raw.exchange(
            "POST", target, [*register_headers(), ("authorization", f"Bearer {wrong}")],
            b"</3/0>")
        assert (state.status, bytes(state.body)) == (401, b"authentication failed")
        assert state.headers["www-authenticate"] == "Bearer"
        await asyncio.wait_for(raw.closed.wait(), 5)
        assert raw.goaway == 0
    finally:
        await raw.close()
    reasons = set()
    while len(reasons) < 2:
        ev = await events.until(Refused)
        assert isinstance(ev, Refused)
        reasons.add(ev.reason)
    assert reasons == {"authentication-required", "bad-credentials"}
    assert "psk-dev" not in h2c_server.registrations
    # A token for another identity cannot take over a connection already authenticated.
    raw = await RawH2.open("127.0.0.1", port)
    try:
        good = f"Bearer {bearer_token(b'psk-dev-id', KEY)}"
        state = await raw.exchange(
            "POST", target, [*register_headers(), ("authorization", good)], b"</3/0>")
        assert state.status == 201
        await h2c_server.stores.security.put(SecurityInfo("other", psk_identity=b"other",
                                                          psk_key=KEY))
        other = f"Bearer {bearer_token(b'other', KEY)}"
        state = await raw.exchange(
            "POST", "/rd?ep=other&b=H", [*register_headers(), ("authorization", other)],
            b"</3/0>")
        assert state.status == 401
    finally:
        await raw.close()
