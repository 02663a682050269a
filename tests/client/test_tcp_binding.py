"""The client over coap+tcp:// and coaps+tcp:// (binding T) against our server: register
with b=T, serve the server's requests over the client's own connection, reconnect when the
connection drops, with the registration back-off when the server is gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiolwm2m.client import (
    BootstrapFailed,
    ClientConfig,
    LwM2MClient,
    Registered,
    RegistrationFailed,
    RetryPolicy,
    TemperatureInstance,
    Updated,
)
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Registered as ServerRegistered
from aiolwm2m.server.events import Updated as ServerUpdated
from aiolwm2m.store.records import SecurityInfo
from aiolwm2m.transport.site import RenderResult, Resource, Site
from aiolwm2m.transport.tcp import TcpEndpoint

from .conftest import next_event
from .test_security_modes import exercise

KEY = b"0123456789abcdef"


@pytest.fixture
async def tcp_server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=0, tls_port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("tls-dev", psk_identity=b"tls-dev",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


async def start_client(endpoint: str, uri: str, **kwargs: Any) -> LwM2MClient:
    client = LwM2MClient(ClientConfig.development(endpoint, uri, host="::1", **kwargs),
                         objects=[TemperatureInstance(0)])
    await client.start()
    return client


async def test_nosec_over_tcp(tcp_server: LwM2MServer) -> None:
    client = await start_client("tcp-dev", f"coap+tcp://[::1]:{tcp_server.port_of('tcp')}")
    await exercise(tcp_server, client, "tcp-dev", "tcp", None, "T")


async def test_psk_over_tls(tcp_server: LwM2MServer) -> None:
    client = await start_client("tls-dev", f"coaps+tcp://[::1]:{tcp_server.port_of('tls')}",
                                development_security=PskCredentials(b"tls-dev", KEY))
    await exercise(tcp_server, client, "tls-dev", "tls", "psk:tls-dev", "T")


async def test_configured_binding_is_kept_when_it_names_the_transport(
        tcp_server: LwM2MServer) -> None:
    client = await start_client("both", f"coap+tcp://[::1]:{tcp_server.port_of('tcp')}",
                                binding="UT")
    try:
        await client.wait_registered(5)
        assert tcp_server.registrations["both"].binding == "UT"
    finally:
        await client.stop()


async def test_dropped_connection_reconnects_with_an_update(tcp_server: LwM2MServer) -> None:
    client = await start_client("tls-dev", f"coaps+tcp://[::1]:{tcp_server.port_of('tls')}",
                                development_security=PskCredentials(b"tls-dev", KEY))
    stream = client.events.stream()
    events = tcp_server.events.stream()
    try:
        await client.wait_registered(5)
        before = tcp_server.registrations["tls-dev"]
        transport = tcp_server.transports["tls"]
        assert isinstance(transport, TcpEndpoint)
        transport.abort(before.address, "testing")
        # The client notices, connects again and tells the server where it is now.
        assert isinstance(await stream.until(Updated, timeout=5), Updated)
        ev = await next_event(events, ServerUpdated, 5)
        assert ev.registration.id == before.id and ev.registration.address != before.address
        assert ev.registration.identity == "psk:tls-dev"
        read = await tcp_server.read("tls-dev", "/3303/0/5700", timeout=5)
        assert read.code == Code.CONTENT
    finally:
        await client.stop()


async def test_server_restart_is_survived_with_back_off() -> None:
    first = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=0, store="memory",
                                     run_timers=False))
    await first.start()
    port = first.port_of("tcp")
    policy = RetryPolicy(initial=0.2, factor=2.0, maximum=1.0, jitter=0.0, minimum=0.2)
    client = await start_client("phoenix", f"coap+tcp://[::1]:{port}", retry=policy)
    stream = client.events.stream()
    second: LwM2MServer | None = None
    try:
        await client.wait_registered(5)
        await first.stop()
        # Update on a new connection fails, then registration attempts back off.
        failures = []
        for _ in range(3):
            failed = await stream.until(RegistrationFailed, timeout=5)
            assert isinstance(failed, RegistrationFailed)
            failures.append(failed.retry_in)
        assert failures == [0.2, 0.4, 0.8]
        second = LwM2MServer(ServerConfig(host="::1", port=0, tcp_port=port, store="memory",
                                          run_timers=False))
        events = second.events.stream()
        await second.start()
        assert isinstance(await stream.until(Registered, timeout=5), Registered)
        ev = await next_event(events, ServerRegistered, 5)
        assert ev.registration.endpoint == "phoenix" and ev.registration.binding == "T"
        assert (await second.read("phoenix", "/3/0/2", timeout=5)).code == Code.CONTENT
    finally:
        await client.stop()
        if second is not None:
            await second.stop()


class HangUpBootstrap(Resource):
    """A Bootstrap-Server that accepts the Bootstrap-Request, then drops the connection."""

    def __init__(self, endpoint: list[TcpEndpoint]) -> None:
        super().__init__()
        self.endpoint = endpoint

    def render_post(self, request: Message) -> RenderResult:
        asyncio.get_running_loop().call_later(0.1, self.endpoint[0].abort, request.remote,
                                              "going away")
        return request.response(Code.CHANGED)


async def test_bootstrap_fails_at_once_when_its_connection_drops() -> None:
    holder: list[TcpEndpoint] = []
    site = Site()
    site.add("bs", HangUpBootstrap(holder))
    bs = await TcpEndpoint.create("::1", 0, site=site, dial=False)
    holder.append(bs)
    client = LwM2MClient(ClientConfig("orphan", bootstrap_uri=f"coap+tcp://[::1]:{bs.port}",
                                      host="::1", bootstrap_timeout=30.0,
                                      retry=RetryPolicy(initial=5.0, jitter=0.0)))
    stream = client.events.stream()
    started = time.monotonic()
    await client.start()
    try:
        failed = await stream.until(BootstrapFailed, timeout=5)
        assert isinstance(failed, BootstrapFailed)
        assert "connection to the bootstrap server ended" in failed.reason
        assert time.monotonic() - started < 5  # not bootstrap_timeout
    finally:
        await client.stop()
        await bs.close()
