"""Property-based API testing with schemathesis against the live OpenAPI schema: whatever
it sends, the server never answers with a 5xx error (except 502/504, which report the
device's behaviour, not the server's), and responses conform to the schema."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from aiolwm2m.bootstrap.server import BootstrapServer, BootstrapServerConfig
from aiolwm2m.firmware.service import FirmwareService
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.web.app import create_app
from aiolwm2m.web.serve import WebServer

from ..server.aiocoap_device import started_device
from .api_fixtures import TOKEN


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What `aiolwm2m server` serves (every router: firmware and bootstrap included, values
    kept in SQLite) on a loop of its own thread, so schemathesis can call it synchronously."""
    ready: dict[str, Any] = {}
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None
    data_dir = tmp_path_factory.mktemp("schemathesis")

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = LwM2MServer(ServerConfig(host="::1", port=0, store="memory",
                                          data_dir=data_dir, values_store="sqlite"))
        firmware = FirmwareService(server)
        await server.start()
        await firmware.start()
        bootstrap = BootstrapServer(
            BootstrapServerConfig(host="::1", port=0, store="memory", data_dir=data_dir),
            server_security=server.stores.security, refusal_sink=server.refusals)
        await bootstrap.start()
        web = WebServer(create_app(server, [TOKEN], bootstrap, firmware), "127.0.0.1", 0)
        await web.start()
        device = await started_device("dev-1")
        try:
            await device.register(f"coap://[::1]:{server.port}")
            ready["url"] = web.url
            started.set()
            await stop.wait()
        finally:
            await device.stop()
            await web.stop()
            await bootstrap.stop()
            await firmware.stop()
            await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "server did not start"
    yield ready["url"]
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_api_never_fails_on_its_own(live_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    checked: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/events":
            continue  # an endless stream, tested in test_api.py

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            # 502/504 report what the device did (bad payload, no answer), not a fault.
            assert response.status_code < 500 or response.status_code in (502, 504), (
                case.method, case.formatted_path, response.status_code, response.text[:300])
            if response.status_code < 500:
                # The schema types a path as a string; whether "/3/x" or "/3/70000" is an
                # LwM2M path is decided by the server (400 with a reason), so "a
                # schema-valid request was rejected" is expected and not checked.
                case.validate_response(response, excluded_checks=[
                    schemathesis.checks.positive_data_acceptance])

        check()
        checked.add(f"{operation.method.upper()} {operation.path}")
    # Every area's routes were there: a router missing from the app fails here.
    assert len(checked) >= 100
    assert {"GET /api/clients/{endpoint}/values", "POST /api/firmware/images",
            "GET /api/bootstrap", "GET /api/rd/ep", "GET /api/groups", "GET /api/broker",
            "GET /api/nidd", "GET /api/registrations/{endpoint}/devices"} <= checked
