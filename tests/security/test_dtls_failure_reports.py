"""A failed DTLS handshake is reported the moment it fails, with the peer and the identity
it offered: a log line and a ``Refused`` event on the LwM2M server, counted by reason.
Real sockets on loopback; the failing clients are our DTLS client and libcoap's."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.errors import CoapError
from aiolwm2m.coap.message import Message
from aiolwm2m.security import (
    DtlsClient,
    DtlsServerConfig,
    InMemoryCredentialLookup,
    PskCredentials,
    ServerCredentials,
)
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Refused
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint

from ..transport.raw_peer import RawPeer
from .libcoap import coap_client, requires_libcoap

KEY = bytes(range(16))
#: The old behaviour, which this replaces: a wrong key showed up at the handshake timeout.
HANDSHAKE_TIMEOUT = 30.0
#: Well under the timeout, with room for a loaded machine (a handshake takes milliseconds).
PROMPTLY = 2.0


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(
        host="127.0.0.1", port=0, coaps_port=0, store="memory", run_timers=False,
        dtls_limits=DtlsServerConfig(handshake_timeout=HANDSHAKE_TIMEOUT)))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("dev", psk_identity=b"dev-id", psk_key=KEY))
    yield srv
    await srv.stop()


async def attempt(server: LwM2MServer, credentials: PskCredentials) -> None:
    """Try to register over DTLS with ``credentials``, which the server refuses."""
    client = await DtlsEndpoint.create("127.0.0.1", 0, server_credentials=None)
    assert isinstance(client, DtlsEndpoint)
    try:
        remote = await client.secure(("127.0.0.1", server.port_of("dtls")),
                                     ClientSecurity(credentials, handshake_timeout=PROMPTLY))
        with pytest.raises((CoapError, TimeoutError)):
            await client.request(Message.request(Code.POST, "/rd", query=["ep=dev"]),
                                 remote, timeout=PROMPTLY)
    finally:
        await client.close()


@pytest.mark.parametrize(("credentials", "reason", "offered"), [
    (PskCredentials(b"dev-id", b"not the right key"), "dtls-bad-key", "psk:dev-id"),
    (PskCredentials(b"nobody", KEY), "dtls-unknown-identity", "psk:nobody"),
])
async def test_a_failed_handshake_is_reported_at_once(
        server: LwM2MServer, caplog: pytest.LogCaptureFixture, credentials: PskCredentials,
        reason: str, offered: str) -> None:
    events = server.events.stream()
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiolwm2m.server.refusals"):
        task = asyncio.ensure_future(attempt(server, credentials))
        refused = await events.until(Refused, timeout=PROMPTLY)
        assert time.monotonic() - began < PROMPTLY
        await task
    assert isinstance(refused, Refused)
    assert (refused.transport, refused.reason) == ("dtls", reason)
    assert refused.peer is not None and refused.peer.startswith("127.0.0.1:")
    assert offered in refused.detail
    assert server.refusals.by_reason[reason] == 1
    (line,) = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
    assert refused.peer in line and offered in line


async def test_a_stalled_handshake_is_reported_when_it_times_out() -> None:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, coaps_port=0, store="memory",
                                   run_timers=False,
                                   dtls_limits=DtlsServerConfig(handshake_timeout=0.5)))
    await srv.start()
    try:
        events = srv.events.stream()
        peer = await RawPeer.open("127.0.0.1")
        client = DtlsClient(PskCredentials(b"quiet", KEY))
        try:
            client.start(time.monotonic())
            for datagram in client.outgoing():
                peer.send(datagram, ("127.0.0.1", srv.port_of("dtls")))
            hvr, _ = await asyncio.wait_for(peer.queue.get(), 5)
            client.receive_datagram(hvr, time.monotonic())
            for datagram in client.outgoing():  # the cookie; then silence
                peer.send(datagram, ("127.0.0.1", srv.port_of("dtls")))
            refused = await events.until(Refused, timeout=5)
        finally:
            client.close()
            peer.close()
        assert isinstance(refused, Refused) and refused.reason == "dtls-timeout"
        assert "no identity offered" in refused.detail
    finally:
        await srv.stop()


@requires_libcoap
async def test_libcoap_with_a_wrong_key_is_reported_at_once(server: LwM2MServer) -> None:
    events = server.events.stream()
    uri = f"coaps://127.0.0.1:{server.port_of('dtls')}/rd?ep=dev"
    task = asyncio.ensure_future(coap_client(
        "coap-client-gnutls", ["-B", "3", "-m", "post", "-k", "wrong-key", "-u", "dev-id"],
        uri, timeout=8))
    refused = await events.until(Refused, timeout=PROMPTLY)
    await task
    assert isinstance(refused, Refused)
    assert refused.reason == "dtls-bad-key" and "psk:dev-id" in refused.detail


async def test_without_a_hook_the_endpoint_logs_the_failure(
        caplog: pytest.LogCaptureFixture) -> None:
    """Endpoints with no one to report to (the Bootstrap-Server's) log it themselves."""
    lookup = InMemoryCredentialLookup(psk={b"dev-id": KEY})
    endpoint = await DtlsEndpoint.create("127.0.0.1", 0, server_credentials=ServerCredentials(
        lookup))
    assert isinstance(endpoint, DtlsEndpoint)
    try:
        with caplog.at_level(logging.WARNING, logger="aiolwm2m.transport.dtls"):
            client = await DtlsEndpoint.create("127.0.0.1", 0, server_credentials=None)
            assert isinstance(client, DtlsEndpoint)
            try:
                remote = await client.secure(
                    ("127.0.0.1", endpoint.port),
                    ClientSecurity(PskCredentials(b"dev-id", b"wrong"), handshake_timeout=1))
                with pytest.raises((CoapError, TimeoutError)):
                    await client.request(Message.request(Code.GET, "/"), remote, timeout=1)
            finally:
                await client.close()
        lines = [r.getMessage() for r in caplog.records if r.name == "aiolwm2m.transport.dtls"]
        assert any("psk:dev-id" in line and "127.0.0.1" in line and "wrong key" in line
                   for line in lines), lines
    finally:
        await endpoint.close()
