"""CoAP over TLS (coaps+tcp) end to end: PSK, raw public keys and X.509 through the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.cli.coap_server import CounterResource, StoreResource, TextResource
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.tcp_connection import ConnectionLost, TcpParameters
from aiolwm2m.security import (
    CertificateUsage,
    Credentials,
    InMemoryCredentialLookup,
    PskCredentials,
    RpkCredentials,
    ServerCredentials,
    X509Credentials,
)
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.tcp import TcpEndpoint
from aiolwm2m.transport.tcp_events import Connected, TcpConnectionEvent
from aiolwm2m.transport.tls import TlsClientSecurity, TlsServerSecurity
from tests.security.pki import Pki, make_pki

PSK = PskCredentials(b"device-7", b"correct horse battery")
BODY = bytes((i * 11) & 0xFF for i in range(100_000))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("tcp-pki")))


@pytest.fixture(scope="module")
def keys(pki: Pki) -> dict[str, RpkCredentials]:
    return {name: RpkCredentials(pki.read(f"rpk_{name}.key")) for name in ("server", "client")}


@pytest.fixture
async def server(pki: Pki, keys: dict[str, RpkCredentials]) -> AsyncIterator[TcpEndpoint]:
    site = Site()
    site.add("hello", TextResource("hello tls"))
    site.add("large", StoreResource(BODY, 42))
    site.add("counter", CounterResource())
    lookup = InMemoryCredentialLookup(psk={PSK.identity: PSK.key},
                                      rpk=[keys["client"].public_key_der])
    x509 = X509Credentials(pki.read("server_chain.pem"), pki.read("server.key"),
                           pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    security = TlsServerSecurity(ServerCredentials(lookup, rpk=keys["server"], x509=x509))
    ep = await TcpEndpoint.create("127.0.0.1", 0, site=site, tls_server=security)
    assert ep.scheme == "coaps+tcp"
    yield ep
    await ep.close()


async def client_with(credentials: Credentials, **kwargs: object) -> TcpEndpoint:
    return await TcpEndpoint.create(listen=False, tls_client=TlsClientSecurity(
        credentials, handshake_timeout=3.0, **kwargs))  # type: ignore[arg-type]


async def test_psk_requests_blocks_observe_and_identity(server: TcpEndpoint) -> None:
    events: list[TcpConnectionEvent] = []
    server.events.subscribe(events.append)
    client = await TcpEndpoint.create(
        listen=False, params=TcpParameters(max_message_size=16384),
        tls_client=TlsClientSecurity(PSK))
    try:
        remote = ("127.0.0.1", server.port)
        r = await client.request(Message.request(Code.GET, "/hello"), remote)
        assert r.payload == b"hello tls"
        r = await client.request(Message.request(Code.GET, "/large"), remote)  # BERT
        assert r.payload == BODY
        [peer] = server.connections()
        assert server.identity_of(peer) == "psk:device-7"
        connected = events[0]
        assert isinstance(connected, Connected) and connected.identity is not None
        assert connected.identity.psk_identity == b"device-7"
        counter = server.site.find(Message.request(Code.GET, "/counter"))
        assert isinstance(counter, CounterResource)
        sub = await client.observe(Message.request(Code.GET, "/counter"), remote)
        counter.value = 3
        counter.notify()
        assert (await asyncio.wait_for(sub.__anext__(), 2)).payload == b"3"
        await sub.cancel()
        assert 0 <= await client.ping(remote, timeout=2) < 1
    finally:
        await client.close()


async def test_raw_public_key(server: TcpEndpoint, keys: dict[str, RpkCredentials]) -> None:
    client = await client_with(keys["client"], server_public_key=keys["server"].public_key_der)
    try:
        r = await client.request(Message.request(Code.GET, "/hello"), ("127.0.0.1", server.port))
        assert r.payload == b"hello tls"
        [peer] = server.connections()
        assert (server.identity_of(peer) or "").startswith("rpk:")
    finally:
        await client.close()


async def test_x509(server: TcpEndpoint, pki: Pki) -> None:
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    client = await client_with(creds, server_name="localhost")
    try:
        r = await client.request(Message.request(Code.GET, "/hello"), ("127.0.0.1", server.port))
        assert r.payload == b"hello tls"
        [peer] = server.connections()
        assert server.identity_of(peer) == "x509:client1"
        [mine] = client.connections()
        assert client.identity_of(mine) == "x509:localhost"
    finally:
        await client.close()


async def test_wrong_psk_fails_the_handshake_only(server: TcpEndpoint) -> None:
    bad = await client_with(PskCredentials(b"device-7", b"wrong"))
    good = await client_with(PSK)
    try:
        with pytest.raises(ConnectionLost, match="TLS handshake failed"):
            await bad.request(Message.request(Code.GET, "/hello"), ("127.0.0.1", server.port))
        r = await good.request(Message.request(Code.GET, "/hello"), ("127.0.0.1", server.port))
        assert r.payload == b"hello tls"
        await asyncio.sleep(0.05)
        assert len(server.connections()) == 1
    finally:
        await bad.close()
        await good.close()


async def test_connection_loss_over_tls(server: TcpEndpoint) -> None:
    client = await client_with(PSK)
    try:
        remote = ("127.0.0.1", server.port)
        sub = await client.observe(Message.request(Code.GET, "/counter"), remote)
        [peer] = server.connections()
        server.abort(peer, "bye")
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(sub.__anext__(), 2)
        r = await client.request(Message.request(Code.GET, "/hello"), remote)  # re-dials
        assert r.payload == b"hello tls"
    finally:
        await client.close()
