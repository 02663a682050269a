"""Bootstrap and HTTP/2: a device bootstrapped over CoAP whose LwM2M Server URI is
``http2://`` registers over HTTP/2 with binding H; and the whole bootstrap session over
HTTP/2 (Bootstrap-Request ``POST /bs``, its requests on the device's downlink stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    BootstrapCredentials,
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
    SessionFinished,
    SessionStarted,
)
from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.http2.bootstrap_binding import open_bootstrap_http2
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig

from .raw_device import RawH2

BS_KEY = b"bootstrap-secret"


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, BootstrapServer]]:
    server = LwM2MServer(ServerConfig(host="::1", port=0, http2_port=0, store="memory"))
    await server.start()
    # A DTLS listener too: the Bootstrap-Server takes bootstrap credentials only when one
    # of its listeners can check them (h2c bearer tokens are not counted as one).
    bootstrap = BootstrapServer(BootstrapServerConfig(host="::1", port=0, coaps_port=0,
                                                      store="memory", data_dir=tmp_path))
    await bootstrap.start()
    try:
        yield server, bootstrap
    finally:
        await bootstrap.stop()
        await server.stop()


async def test_bootstrapped_device_registers_over_http2(
        servers: tuple[LwM2MServer, BootstrapServer]) -> None:
    server, bootstrap = servers
    await bootstrap.set_config("*", EndpointConfig.for_server(
        f"http2://[::1]:{server.port_of('http2')}", 3, lifetime=120, binding="H"))
    client = LwM2MClient(ClientConfig("bs-h2", bootstrap_uri=f"coap://[::1]:{bootstrap.port}",
                                      host="::1"))
    await client.start()
    try:
        await client.wait_registered(10)
        reg = server.registrations["bs-h2"]
        assert (reg.transport, reg.binding, reg.lifetime) == ("http2", "H", 120)
        resp = await server.read("bs-h2", "/1/0/7", timeout=10)  # Binding, as provisioned
        assert resp.code == Code.CONTENT and resp.content.value == "H"  # type: ignore[union-attr]
    finally:
        await client.stop()


async def test_bootstrap_over_http2(servers: tuple[LwM2MServer, BootstrapServer]) -> None:
    """Bootstrap-Request ``POST /bs`` and the whole session over HTTP/2, then Register over
    HTTP/2 as provisioned."""
    server, bootstrap = servers
    bs_h2 = await open_bootstrap_http2(bootstrap, "::1", 0)
    await bootstrap.set_config("*", EndpointConfig.for_server(
        f"http2://[::1]:{server.port_of('http2')}", 4, lifetime=150, binding="H"))
    events = bootstrap.events.stream()
    client = LwM2MClient(ClientConfig("bs-over-h2", host="::1",
                                      bootstrap_uri=f"http2://[::1]:{bs_h2.port}"))
    await client.start()
    try:
        await client.wait_registered(10)
        started = await events.until(SessionStarted)
        assert isinstance(started, SessionStarted) and started.endpoint == "bs-over-h2"
        assert isinstance(await events.until(SessionFinished), SessionFinished)
        (session,) = await bootstrap.sessions("bs-over-h2")
        assert session.state == "finished" and session.requests == 5
        reg = server.registrations["bs-over-h2"]
        assert (reg.transport, reg.binding, reg.lifetime) == ("http2", "H", 150)
        assert bootstrap.port_of("http2") == bs_h2.port
        # The session's downlink is gone with it; nobody else may open one for the name.
        assert not bs_h2.has_downlink("bs-over-h2")
        raw = await RawH2.open("::1", bs_h2.port)
        try:
            state = await raw.exchange("GET", "/bs/bs-over-h2/requests")
            assert state.status == 404 and bytes(state.body) == b"no bootstrap session"
        finally:
            await raw.close()
    finally:
        await client.stop()


async def test_bootstrap_over_h2c_with_a_bearer_token(
        servers: tuple[LwM2MServer, BootstrapServer]) -> None:
    """An endpoint with bootstrap credentials (a PSK) bootstraps over h2c only with them,
    as a bearer token; without, its Bootstrap-Request is refused (403)."""
    server, bootstrap = servers
    bs_h2 = await open_bootstrap_http2(bootstrap, "::1", 0)
    await bootstrap.set_config("bs-psk", EndpointConfig.for_server(
        f"http2://[::1]:{server.port_of('http2')}", 5, binding="H",
        bootstrap_credentials=BootstrapCredentials.psk("bs-psk-id", BS_KEY)))
    raw = await RawH2.open("::1", bs_h2.port)
    try:
        state = await raw.exchange("POST", "/bs?ep=bs-psk")
        assert state.status == 403
    finally:
        await raw.close()
    assert bootstrap.refusals.by_reason["bootstrap-nosec"] == 1
    client = LwM2MClient(ClientConfig(
        "bs-psk", host="::1", bootstrap_uri=f"http2://[::1]:{bs_h2.port}",
        bootstrap_security=PskCredentials(b"bs-psk-id", BS_KEY)))
    await client.start()
    try:
        await client.wait_registered(10)
        (session,) = [s for s in await bootstrap.sessions("bs-psk") if s.state == "finished"]
        assert session.requests == 5
        assert server.registrations["bs-psk"].transport == "http2"
    finally:
        await client.stop()
