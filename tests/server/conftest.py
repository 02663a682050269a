from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.server import LwM2MServer, ServerConfig
from tests.fake_clock import FakeClock

from .aiocoap_device import AiocoapDevice, started_device


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[LwM2MServer]:
    cfg = ServerConfig(host="::1", port=0, data_dir=tmp_path, clock=clock, run_timers=False,
                       awake_time=30.0)
    srv = LwM2MServer(cfg)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def device() -> AsyncIterator[AiocoapDevice]:
    dev = await started_device("dev-1")
    yield dev
    await dev.stop()


def uri(server: LwM2MServer) -> str:
    return f"coap://[::1]:{server.port}"
