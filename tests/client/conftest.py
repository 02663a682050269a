from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.client import ClientConfig, LwM2MClient, ManualClock, TemperatureInstance
from aiolwm2m.client.instance import Instance
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import Event, EventStream
from tests.fake_clock import FakeClock

from .aiocoap_server import AiocoapLwM2MServer

#: Short CoAP timers so that lost messages fail in tenths of a second, not minutes.
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


def uri(port: int) -> str:
    return f"coap://[::1]:{port}"


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Start development-provisioned (or bootstrap-provisioned) clients; stopped at the
    end of the test."""
    started: list[LwM2MClient] = []

    async def factory(endpoint: str = "dev-1", *, server_port: int | None = None,
                      bootstrap_port: int | None = None, objects: list[Instance] | None = None,
                      register: bool = True, **kwargs: Any) -> LwM2MClient:
        kwargs.setdefault("host", "::1")
        kwargs.setdefault("transmission", FAST)
        if server_port is not None:
            config = ClientConfig.development(endpoint, uri(server_port), **kwargs)
        else:
            assert bootstrap_port is not None
            config = ClientConfig(endpoint, bootstrap_uri=uri(bootstrap_port), **kwargs)
        client = LwM2MClient(config, objects=objects if objects is not None
                             else [TemperatureInstance(0)])
        await client.start()
        started.append(client)
        if register:
            await client.wait_registered(5)
        return client

    yield factory
    for c in started:
        await c.stop(deregister=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def next_event(stream: EventStream, kind: type, timeout: float = 3.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            event: Event = await stream.next()
            if isinstance(event, kind):
                return event


async def no_event(stream: EventStream, kind: type, wait: float = 0.3) -> bool:
    """True when no event of ``kind`` arrives within ``wait`` seconds."""
    try:
        await next_event(stream, kind, wait)
    except TimeoutError:
        return True
    return False


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def peer() -> AsyncIterator[AiocoapLwM2MServer]:
    """An independent LwM2M server built on aiocoap."""
    p = AiocoapLwM2MServer()
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def client(peer: AiocoapLwM2MServer, make_client: ClientFactory
                 ) -> AsyncIterator[LwM2MClient]:
    """Our client with a temperature sensor, registered with ``peer``."""
    c: LwM2MClient = await make_client("peer-dev", server_port=peer.port, register=False,
                                       objects=[TemperatureInstance(0)])
    await eventually(lambda: bool(peer.rd.registrations), 5)
    yield c
