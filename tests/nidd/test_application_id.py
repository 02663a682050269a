"""Application IDs (OSR-001): two LwM2M servers share one SCEF, each reached at its own RDS
port pair reserved under its application id (ManagePort); a bootstrap server provisions
the device's Object 11 (31-33) and NIDD account, and its traffic reaches the right one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    BootstrapServer,
    BootstrapServerConfig,
    EndpointConfig,
    SecurityConfig,
    ServerAccountConfig,
)
from aiolwm2m.bootstrap.configuration import InstanceWrite
from aiolwm2m.client import ClientConfig, LwM2MClient
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.nidd.attachment import NIDD_SERVER_URI, NiddAttachment
from aiolwm2m.nidd.devices import NiddDevice
from aiolwm2m.nidd.emulator import ScefEmulator
from aiolwm2m.nidd.settings import NiddSettings

from .server_rig import nidd_rig
from .t8_schema import T8Schema, t8_schema

UE = "dev-1@nidd.example"
FAST = TransmissionParameters(ack_timeout=1.0, ack_random_factor=1.0, max_retransmit=2,
                              response_timeout=30.0, empty_ack_delay=0.5)


@pytest.fixture
def schema() -> T8Schema:
    return t8_schema()


def server_settings(name: str, ports: tuple[int, int]) -> NiddSettings:
    return NiddSettings(scs_as_id=name, app_id=f"lwm2m-{name}", rds_ports=ports,
                        devices=(NiddDevice(UE),))


async def test_a_bootstrapped_device_reaches_its_own_server(schema: T8Schema,
                                                            tmp_path: Path) -> None:
    async with ScefEmulator("127.0.0.1", 0) as scef, \
            nidd_rig(schema, scef=scef, settings=server_settings("a", (1, 1))) as a, \
            nidd_rig(schema, scef=scef, settings=server_settings("b", (2, 2))) as b:
        await a.configured(UE)
        config_b = await b.configured(UE)
        # Each server reserved its port pair under its application id.
        async with asyncio.timeout(10):
            while not all(r.ports for r in scef.scef.configurations.values()):  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
        reserved = {r.config.self: {p.appId for p in r.ports.values()}
                    for r in scef.scef.configurations.values()}  # type: ignore[union-attr]
        assert reserved[config_b] == {"lwm2m-b"}
        bs = BootstrapServer(BootstrapServerConfig(host="127.0.0.1", port=0, store="memory",
                                                   data_dir=tmp_path, request_timeout=5.0))
        await bs.start()
        try:
            # The NIDD account (no URI to resolve, binding N) and Object 11's RDS
            # application id and ports: server b's.
            await bs.set_config("dev-1", EndpointConfig(
                security=(SecurityConfig(1, NIDD_SERVER_URI, short_server_id=1),),
                servers=(ServerAccountConfig(0, 1, 300, "N"),),
                writes=(InstanceWrite(LwM2MPath(11, 0), {
                    0: "nidd", 4: 0, 24: 0, 31: {0: "lwm2m-b"}, 32: {0: 2}, 33: {0: 2}}),)))
            client = LwM2MClient(ClientConfig(
                "dev-1", bootstrap_uri=f"coap://127.0.0.1:{bs.port_of('udp')}",
                transmission=FAST, nidd=NiddAttachment(scef.url, UE)))
            await client.start()
            try:
                await client.wait_registered(timeout=20)
                assert "dev-1" in b.server.registrations
                assert "dev-1" not in a.server.registrations
                read = await b.server.read("dev-1", "/11/0/31", timeout=10)
                assert dict(read.content.instances) == {0: "lwm2m-b"}  # type: ignore[union-attr]
            finally:
                await client.stop()
        finally:
            await bs.stop()
