"""Our DtlsClient against our DtlsServer over real UDP sockets on 127.0.0.1, speaking CoAP."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    CertificateUsage,
    Credentials,
    DtlsClient,
    DtlsServer,
    DtlsServerConfig,
    HandshakeCompleted,
    InMemoryCredentialLookup,
    PskCredentials,
    RpkCredentials,
    ServerCredentials,
    SessionClosed,
    X509Credentials,
)

from .dtls_harness import DtlsClientHarness, DtlsServerHarness
from .pki import Pki


@pytest.fixture
def all_modes_server(lookup: InMemoryCredentialLookup, server_rpk: RpkCredentials,
                     server_x509: X509Credentials) -> DtlsServer:
    return DtlsServer(ServerCredentials(lookup, rpk=server_rpk, x509=server_x509),
                      DtlsServerConfig(handshake_timeout=1.5))


def _client(mode: str, pki: Pki, psk: PskCredentials, client_rpk: RpkCredentials,
            server_rpk: RpkCredentials, **kwargs: object) -> DtlsClient:
    creds: Credentials
    if mode == "psk":
        return DtlsClient(psk, **kwargs)  # type: ignore[arg-type]
    if mode == "rpk":
        return DtlsClient(client_rpk, server_public_key=server_rpk.public_key_der,
                          **kwargs)  # type: ignore[arg-type]
    usage = CertificateUsage(int(mode[-1]))
    given = {0: "root.pem", 1: "server.pem", 2: "inter.pem", 3: "server.pem"}[usage]
    creds = X509Credentials(pki.read("client1_chain.pem"), pki.read("client1.key"),
                            pki.read(given), usage,
                            pki.read("root.pem") if usage == 1 else None)
    return DtlsClient(creds, server_name="localhost", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["psk", "rpk", "x509-usage-0", "x509-usage-1", "x509-usage-2",
                                  "x509-usage-3"])
async def test_coap_over_dtls_in_every_mode(mode: str, all_modes_server: DtlsServer, pki: Pki,
                                            psk: PskCredentials, client_rpk: RpkCredentials,
                                            server_rpk: RpkCredentials) -> None:
    async with DtlsServerHarness(all_modes_server) as server:
        client = _client(mode, pki, psk, client_rpk, server_rpk)
        async with DtlsClientHarness(client, server.port) as h:
            done = await h.handshake()
            assert isinstance(done, HandshakeCompleted), done
            resp = await h.request(Message.request(Code.GET, "/hello"))
            assert (resp.code, resp.payload) == (Code.CONTENT, b"world")
            resp = await h.request(Message.request(Code.PUT, "/echo", payload=b"x" * 900))
            assert (resp.code, resp.payload) == (Code.CHANGED, b"x" * 900)
        await server.wait_for(lambda s: bool(s.closed()))
        (completed,) = server.completed()
        assert completed.identity.kind.value == mode[:4].rstrip("-")
        assert server.closed()[0].reason == "closed by the peer"


async def test_resumption_over_udp_from_a_new_port(all_modes_server: DtlsServer,
                                                   psk: PskCredentials) -> None:
    async with DtlsServerHarness(all_modes_server) as server:
        async with DtlsClientHarness(DtlsClient(psk, resumption=True), server.port) as h:
            assert isinstance(await h.handshake(), HandshakeCompleted)
            ticket = h.client.session_data
        assert ticket
        async with DtlsClientHarness(DtlsClient(psk, session_data=ticket), server.port) as h:
            done = await h.handshake()
            assert isinstance(done, HandshakeCompleted) and done.resumed
            resp = await h.request(Message.request(Code.GET, "/hello"))
            assert resp.payload == b"world"
        assert [c.resumed for c in server.completed()] == [False, True]


async def test_wrong_key_fails_and_the_server_keeps_serving(all_modes_server: DtlsServer,
                                                            psk: PskCredentials) -> None:
    async with DtlsServerHarness(all_modes_server) as server:
        bad = DtlsClient(PskCredentials(psk.identity, b"not the key"), handshake_timeout=1.5)
        async with DtlsClientHarness(bad, server.port) as h:
            assert isinstance(await h.handshake(timeout=6), SessionClosed)
        await server.wait_for(lambda s: bool(s.closed()), timeout=6)
        assert "wrong key" in server.closed()[0].reason
        async with DtlsClientHarness(DtlsClient(psk), server.port) as h:
            assert isinstance(await h.handshake(), HandshakeCompleted)
            assert (await h.request(Message.request(Code.GET, "/hello"))).payload == b"world"


async def test_many_clients_at_once(all_modes_server: DtlsServer, psk: PskCredentials) -> None:
    async with DtlsServerHarness(all_modes_server) as server:
        async def one(i: int) -> bytes:
            async with DtlsClientHarness(DtlsClient(psk), server.port) as h:
                assert isinstance(await h.handshake(), HandshakeCompleted)
                resp = await h.request(Message.request(Code.PUT, "/echo", payload=b"%d" % i))
                return resp.payload

        results = await asyncio.gather(*(one(i) for i in range(20)))
        assert results == [b"%d" % i for i in range(20)]
        assert len(server.completed()) == 20
