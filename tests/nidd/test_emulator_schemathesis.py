"""schemathesis against the SCEF emulator: requests generated from TS29122_NIDD.yaml, half of
them aimed at a configuration that exists (and at one of its pending deliveries); every
response must be one the schema documents, with a body it allows, and no 5xx other than
the delivery failures the schema gives a 500 for."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiolwm2m.nidd.emulator import ScefEmulator

from .t8_schema import API_PREFIX, t8_schema

UE = "dev-1@nidd.example"


@pytest.fixture(scope="module")
def live_emulator() -> Iterator[dict[str, str]]:
    ready: dict[str, str] = {}
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with ScefEmulator("127.0.0.1", 0) as scef:
            async with httpx.AsyncClient(base_url=scef.url) as http:
                r = await http.post(f"{API_PREFIX}/as-1/configurations", json={
                    "externalId": UE, "notificationDestination": "http://127.0.0.1:9/cb"})
                config = r.json()["self"].rsplit("/", 1)[1]
                r = await http.post(
                    f"{API_PREFIX}/as-1/configurations/{config}/downlink-data-deliveries",
                    json={"externalId": UE, "data": base64.b64encode(b"x").decode()})
                delivery = r.json()["self"].rsplit("/", 1)[1]
            ready.update(url=scef.url, config=config, delivery=delivery)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30), "emulator did not start"
    yield ready
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_the_emulator_answers_as_the_schema_says(live_emulator: dict[str, str]) -> None:
    schema = t8_schema().schema
    base_url = live_emulator["url"] + API_PREFIX
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/x-aiolwm2m-test"):
            continue
        @given(case=operation.as_strategy(), aim=st.booleans())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any, aim: bool) -> None:
            if aim and case.path_parameters:
                params = dict(case.path_parameters)
                params["scsAsId"] = "as-1"
                if "configurationId" in params:
                    params["configurationId"] = live_emulator["config"]
                if "downlinkDataDeliveryId" in params:
                    params["downlinkDataDeliveryId"] = live_emulator["delivery"]
                case.path_parameters = params
            response = case.call(base_url=base_url, timeout=30)
            status = response.status_code
            # 500 is what the schema gives a failed MT delivery; anything else is a fault.
            assert status < 500 or (status in (500, 503) and "deliveries" in case.path), (
                case.method, case.formatted_path, status, response.text[:300])
            case.validate_response(response, excluded_checks=[
                # A schema-valid body may still name a UE that is not the configuration's,
                # or an unknown resource: the SCEF decides (4xx with ProblemDetails).
                schemathesis.checks.positive_data_acceptance,
                schemathesis.checks.not_a_server_error])

        check()
        checked += 1
    assert checked == 15
