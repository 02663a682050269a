"""A server and gateways on loopback UDP, with short CoAP timers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.client import ClientConfig
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.gateway import EndDevice, LwM2MGateway
from aiolwm2m.gateway.simulated import simulated_end_devices
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Event, EventStream
from tests.fake_clock import FakeClock

FAST = TransmissionParameters(ack_timeout=0.2, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=3.0)


@pytest.fixture
def server_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(tmp_path: Path, server_clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", data_dir=tmp_path,
                                   clock=server_clock, run_timers=False, awake_time=30.0))
    await srv.start()
    yield srv
    await srv.stop()


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def make_gateway() -> AsyncIterator[GatewayFactory]:
    started: list[LwM2MGateway] = []

    async def factory(server_port: int, endpoint: str = "gw-1", *,
                      end_devices: Iterable[EndDevice] | int = 3, register: bool = True,
                      **kwargs: Any) -> LwM2MGateway:
        kwargs.setdefault("host", "::1")
        kwargs.setdefault("transmission", FAST)
        config = ClientConfig.development(endpoint, f"coap://[::1]:{server_port}", **kwargs)
        devices = (simulated_end_devices(end_devices, gateway=endpoint)
                   if isinstance(end_devices, int) else list(end_devices))
        gateway = LwM2MGateway(config, end_devices=devices)
        await gateway.start()
        started.append(gateway)
        if register:
            await gateway.wait_registered(5)
        return gateway

    yield factory
    for g in started:
        await g.stop(deregister=False)


async def next_event(stream: EventStream, kind: type, timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            event: Event = await stream.next()
            if isinstance(event, kind):
                return event


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
