from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.simulator import Fleet, FleetConfig
from aiolwm2m.simulator.profile import FleetProfile
from tests.fake_clock import FakeClock

HOST = "127.0.0.1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def group_config(tmp_path: Path, clock: FakeClock, **kw: Any) -> ServerConfig:
    base: dict[str, Any] = dict(host=HOST, port=0, data_dir=tmp_path, clock=clock,
                                run_timers=False, awake_time=30.0)
    base.update(kw)
    return ServerConfig(**base)


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(group_config(tmp_path, clock))
    await srv.start()
    yield srv
    await srv.stop()


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


async def fleet_of(server: LwM2MServer, count: int, prefix: str = "meter-") -> Fleet:
    """``count`` simulated devices named ``<prefix>000000``..., registered."""
    fleet = Fleet(FleetConfig(count, f"coap://{HOST}:{server.port}", rate=5000, seed=1,
                              profile=FleetProfile(endpoint_prefix=prefix, send_interval=3600,
                                                   sample_period=0.2)))
    await fleet.start()
    await until(lambda: fleet.stats.registered == count)
    return fleet
