"""Half-open DTLS handshakes: a flood of cookie-verified ClientHellos whose senders then
stall must not lock legitimate clients out. Real sockets on loopback against the LwM2M
server's DTLS port; the stalling peers come from many 127.x addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security import DtlsClient, PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.dtls import ClientSecurity, DtlsEndpoint

from ..transport.raw_peer import RawPeer

KEY = bytes(range(16))
LINKS = b'</>;rt="oma.lwm2m",</1/0>,</3/0>'


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, coaps_port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("legit", psk_identity=b"legit-id",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


async def stall_after_cookie(host: str, port: int, held: list[RawPeer] | None = None
                             ) -> None:
    """Send a ClientHello, answer the HelloVerifyRequest with the cookie, then go away (or
    keep the socket in ``held``, so that no later peer on the same address is given its
    port: the server would see the same peer again and replace its handshake)."""
    peer = await RawPeer.open(host)
    client = DtlsClient(PskCredentials(b"stalling", KEY))
    try:
        client.start(time.monotonic())
        for datagram in client.outgoing():
            peer.send(datagram, ("127.0.0.1", port))
        hvr, _ = await asyncio.wait_for(peer.queue.get(), 5)
        client.receive_datagram(hvr, time.monotonic())
        for datagram in client.outgoing():
            peer.send(datagram, ("127.0.0.1", port))
    finally:
        client.close()
        if held is None:
            peer.close()
        else:
            held.append(peer)


async def until(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_stalled_handshakes_do_not_lock_clients_out(server: LwM2MServer) -> None:
    dtls = server.transports["dtls"]
    assert isinstance(dtls, DtlsEndpoint) and dtls.dtls_server is not None
    engine = dtls.dtls_server
    limit = engine.config.max_handshakes
    port = server.port_of("dtls")
    # 600 half-open handshakes from 75 addresses, 8 each (the per-address quota).
    hosts = [f"127.0.1.{i}" for i in range(1, 76)]
    held: list[RawPeer] = []
    try:
        for start in range(0, 600, 50):
            await asyncio.gather(*(stall_after_cookie(hosts[i % 75], port, held)
                                   for i in range(start, start + 50)))
        await until(lambda: engine.stats.handshakes_started == 600)
    finally:
        for peer in held:
            peer.close()
    assert engine.handshake_count == limit
    assert engine.stats.handshakes_evicted == 600 - limit
    assert engine.stats.refused_full == engine.stats.refused_per_address == 0
    # A legitimate PSK client still gets through, and registers, at once.
    client = await DtlsEndpoint.create("127.0.0.1", 0, server_credentials=None)
    assert isinstance(client, DtlsEndpoint)
    try:
        remote = await client.secure(("127.0.0.1", port),
                                     ClientSecurity(PskCredentials(b"legit-id", KEY)))
        began = time.monotonic()
        created = await client.request(Message.request(
            Code.POST, "/rd", query=["ep=legit", "lwm2m=1.1"], payload=LINKS,
            content_format=40), remote, timeout=10)
        assert created.code == Code.CREATED
        assert time.monotonic() - began < 5
        assert server.registrations["legit"].identity == "psk:legit-id"
    finally:
        await client.close()


async def test_one_address_gets_its_quota_of_half_open_handshakes(server: LwM2MServer
                                                                  ) -> None:
    dtls = server.transports["dtls"]
    assert isinstance(dtls, DtlsEndpoint) and dtls.dtls_server is not None
    engine = dtls.dtls_server
    quota = engine.config.max_handshakes_per_address
    port = server.port_of("dtls")
    await asyncio.gather(*(stall_after_cookie("127.0.2.1", port) for _ in range(20)))
    await until(lambda: engine.stats.handshakes_started + engine.stats.refused_per_address
                == 20)
    assert engine.handshake_count == quota
    assert engine.stats.refused_per_address == 20 - quota
    assert engine.stats.handshakes_evicted == 0
    # Another address is not held up.
    await stall_after_cookie("127.0.2.2", port)
    await until(lambda: engine.handshake_count == quota + 1)
