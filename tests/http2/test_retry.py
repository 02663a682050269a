"""A connection that breaks in the middle of a request (HTT-004): the request is retried
once with the same message identity on a new connection and carried out once, in both
directions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aiolwm2m.client import ClientConfig, DeviceInstance, LwM2MClient
from aiolwm2m.coap.codes import Code
from aiolwm2m.security.credentials import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Event, Registered, SendReceived
from aiolwm2m.store.records import SecurityInfo

KEY = b"retry-secret-key"


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory"))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("retry-dev", psk_identity=b"retry-dev",
                                               psk_key=KEY))
    yield srv
    await srv.stop()


def break_connection(server: LwM2MServer, endpoint: str) -> None:
    """Drop the device's connection at once, from the server's side (as a broken link)."""
    # Not the registration's address itself: the compiled registry keeps a plain copy.
    conn = server.transports["http2"].connection_at(  # type: ignore[attr-defined]
        server.registrations[endpoint].address)
    assert conn is not None and conn.transport is not None
    conn.transport.abort()


async def start(server: LwM2MServer, name: str, *objects: object,
                security: PskCredentials | None = None) -> LwM2MClient:
    client = LwM2MClient(ClientConfig.development(
        name, f"http2://127.0.0.1:{server.port_of('http2')}", host="127.0.0.1",
        development_security=security), objects=list(objects))  # type: ignore[arg-type]
    await client.start()
    await client.wait_registered(10)
    return client


async def test_send_retried_after_a_broken_connection_is_received_once(
        server: LwM2MServer) -> None:
    client = await start(server, "send-dev")
    received: list[SendReceived] = []

    def on_event(event: Event) -> None:
        if isinstance(event, SendReceived):
            received.append(event)
            if len(received) == 1:
                # The Send is carried out; its 2.04 never reaches the device.
                break_connection(server, "send-dev")

    unsubscribe = server.events.subscribe(on_event)
    try:
        await client.send(["/3/0/0"])  # succeeds: the retry gets the first answer
        assert len(received) == 1
        assert server.transports["http2"].replies.duplicates == 1  # type: ignore[attr-defined]
    finally:
        unsubscribe()
        await client.stop()


async def test_execute_whose_answer_was_lost_runs_once(server: LwM2MServer) -> None:
    broken: list[bool] = []

    def on_reboot() -> None:
        if not broken:
            broken.append(True)
            break_connection(server, "retry-dev")

    device = DeviceInstance(0, on_reboot=on_reboot)
    client = await start(server, "retry-dev", device,
                         security=PskCredentials(b"retry-dev", KEY))
    try:
        endpoint = server.transports["http2"]
        reg = server.registrations["retry-dev"]
        async with asyncio.timeout(10):
            while not endpoint.has_downlink(reg.id):  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
        resp = await server.execute("retry-dev", "/3/0/4", timeout=10)
        assert resp.code == Code.CHANGED
        assert device.reboots == 1 and broken == [True]
        # The device came back over a new connection, as the same principal.
        assert server.registrations["retry-dev"].identity == "psk:retry-dev"
        assert (await server.read("retry-dev", "/3/0/0", timeout=5)).code == Code.CONTENT
    finally:
        await client.stop()


async def test_register_whose_answer_was_lost_ends_with_a_downlink(
        server: LwM2MServer) -> None:
    """The retried Register gets the first one's 201, but that registration is bound to the
    broken connection's address (NoSec), so its downlink stream is refused: the client
    then updates at once, which registers it again from where it is now."""
    broken: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Registered) and not broken:
            broken.append(event.registration.id)
            break_connection(server, "lost-dev")

    unsubscribe = server.events.subscribe(on_event)
    try:
        client = await start(server, "lost-dev")
    finally:
        unsubscribe()
    try:
        assert server.transports["http2"].replies.duplicates == 1  # type: ignore[attr-defined]
        endpoint = server.transports["http2"]
        async with asyncio.timeout(10):
            while not (endpoint.has_downlink(  # type: ignore[attr-defined]
                    server.registrations["lost-dev"].id)):
                await asyncio.sleep(0.02)
        assert server.registrations["lost-dev"].id != broken[0]
        assert (await server.read("lost-dev", "/3/0/0", timeout=5)).code == Code.CONTENT
    finally:
        await client.stop()
