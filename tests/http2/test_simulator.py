"""``aiolwm2m simulate`` with HTTP/2 devices: each device its own connection and downlink
stream, reads, observations and Sends as over CoAP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from aiolwm2m.coap.codes import Code
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import NotificationReceived, SendReceived
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, http2_port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    yield srv
    await srv.stop()


async def test_http2_devices_register_answer_observe_send(server: LwM2MServer) -> None:
    events = server.events.stream()
    profile = FleetProfile(send_interval=1.0, sample_period=0.5)
    fleet = Fleet(FleetConfig(40, f"http2://127.0.0.1:{server.port_of('http2')}",
                              rate=2000, profile=profile, seed=1))
    await fleet.start()
    endpoint = server.transports["http2"]
    try:
        await until(lambda: fleet.stats.registered == 40)
        regs = server.registrations
        assert len(regs) == 40 and {r.transport for r in regs.values()} == {"http2"}
        assert {r.binding for r in regs.values()} == {"H"}
        # Each device connects from its own loopback address.
        assert len({r.address[0] for r in regs.values()}) == 40
        await until(lambda: all(endpoint.has_downlink(r.id)  # type: ignore[attr-defined]
                                for r in regs.values()))
        resp = await server.read("sim-000012", "/3/0/2", timeout=5)
        assert resp.code == Code.CONTENT and resp.content.value == "sim-000012"  # type: ignore[union-attr]
        assert (await server.read("sim-000012", "/3/0/77", timeout=5)).code == Code.NOT_FOUND
        assert (await server.write_attributes("sim-000007", "/3303/0/5700", pmin=0, pmax=1,
                                              timeout=5)).code == Code.CHANGED
        assert (await server.observe("sim-000007", "/3303/0/5700",
                                     timeout=5)).code == Code.CONTENT
        note = await events.until(NotificationReceived, timeout=5)
        assert isinstance(note, NotificationReceived)
        assert note.registration.endpoint == "sim-000007"
        assert isinstance(await events.until(SendReceived, timeout=5), SendReceived)
    finally:
        await fleet.stop()
    assert fleet.stats.deregistrations == 40
    await until(lambda: not server.registrations)
