"""Our RD registerer against our own RD, the one ``aiolwm2m server`` serves beside LwM2M
registration (``aiolwm2m.rd``): registration, refresh, lookup, simple registration and
removal over coap://, coap+tcp:// and coaps:// with a PSK bound to the endpoint name,
every path discovered through /.well-known/core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiolwm2m.client import ManualClock
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.rd_client import (
    RdRegistered,
    RdRegisterer,
    RdRegistration,
    RdRegistrationLost,
    RdUpdated,
    rd_lookup,
    rd_remove,
)
from aiolwm2m.security import PskCredentials
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import SecurityInfo

pytestmark = pytest.mark.interop
FAST = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=3)
LINKS = '</sensors/temp>;rt="temperature";if="core.s",</sensors/light>;rt="light-lux"'
PSK = PskCredentials(b"rd-secure-node", b"our rd psk key!!")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, coaps_port=0, tcp_port=0,
                                   store="memory", data_dir=tmp_path))
    await srv.start()
    await srv.stores.security.put(SecurityInfo("secure-node", psk_identity=PSK.identity,
                                               psk_key=PSK.key))
    yield srv
    await srv.stop()


def uris(server: LwM2MServer) -> dict[str, str]:
    return {"coap": f"coap://127.0.0.1:{server.port_of('udp')}",
            "coap+tcp": f"coap+tcp://127.0.0.1:{server.port_of('tcp')}",
            "coaps": f"coaps://127.0.0.1:{server.port_of('dtls')}"}


@pytest.mark.parametrize("scheme", ["coap", "coap+tcp", "coaps"])
async def test_register_refresh_look_up_and_remove(server: LwM2MServer, scheme: str) -> None:
    uri = uris(server)[scheme]
    plain = uris(server)["coap"]
    ep = "secure-node" if scheme == "coaps" else f"node-{scheme.replace('+', '-')}"
    clock = ManualClock()
    r = RdRegisterer(uri, RdRegistration.build(ep, sector="plant-1",
                                               endpoint_types="core.rd-ep-x", lifetime=300,
                                               links=LINKS, extra={"room": "12"}),
                     security=PSK if scheme == "coaps" else None, transmission=FAST,
                     request_timeout=10.0, clock=clock)
    stream = r.events.stream()
    await r.start()
    try:
        registered = await stream.until(RdRegistered, timeout=15)
        assert isinstance(registered, RdRegistered)
        location = registered.location
        [found] = await rd_lookup(plain, "ep", [("ep", ep)], transmission=FAST, timeout=10)
        assert found.target == location
        assert (found.get("d"), found.get("et"), found.get("room")) == (
            "plant-1", "core.rd-ep-x", "12")
        resources = await rd_lookup(plain, "res", [("ep", ep), ("rt", "temp*")],
                                    transmission=FAST, timeout=10)
        assert [x.get("rt") for x in resources] == ["temperature"]
        await clock.advance(300.0)
        assert await stream.until(RdUpdated, timeout=10) == RdUpdated(location, 300)
        if scheme == "coap":
            await rd_remove(f"{plain}{location}", transmission=FAST, timeout=10)
            r.refresh_soon()
            lost = await stream.until(RdRegistrationLost, timeout=10)
            assert isinstance(lost, RdRegistrationLost) and "4.04" in lost.reason
            await stream.until(RdRegistered, timeout=10)
    finally:
        await r.close()
    assert await rd_lookup(plain, "ep", [("ep", ep)], transmission=FAST, timeout=10) == []


async def test_simple_registration(server: LwM2MServer) -> None:
    plain = uris(server)["coap"]
    r = RdRegisterer(plain, RdRegistration.build("simple-node", lifetime=300, links=LINKS),
                     simple=True, host="127.0.0.1", transmission=FAST, request_timeout=10.0)
    await r.register()
    try:
        resources = await rd_lookup(plain, "res", [("ep", "simple-node")],
                                    transmission=FAST, timeout=10)
        assert sorted(x.get("rt") or "" for x in resources) == ["light-lux", "temperature"]
    finally:
        await r.close()
    assert await rd_lookup(plain, "ep", [("ep", "simple-node")], transmission=FAST,
                           timeout=10) == []


async def test_rd_credentials_are_not_the_lwm2m_accounts(server: LwM2MServer) -> None:
    """One device, two identities: its LwM2M account (PSK ``lwm2m-dev``) and its RD
    registration (PSK ``rd-secure-node``), each accepted for its own name only."""
    from aiolwm2m.client import ClientConfig, LwM2MClient, TemperatureInstance

    lwm2m_psk = PskCredentials(b"lwm2m-dev", b"lwm2m psk key 16")
    await server.stores.security.put(SecurityInfo("lwm2m-dev", psk_identity=lwm2m_psk.identity,
                                                  psk_key=lwm2m_psk.key))
    coaps = uris(server)["coaps"]
    client = LwM2MClient(ClientConfig.development(
        "lwm2m-dev", coaps, host="127.0.0.1", transmission=FAST,
        development_security=lwm2m_psk), objects=[TemperatureInstance(0)])
    r = RdRegisterer(coaps, RdRegistration.build("secure-node", lifetime=300, links=LINKS),
                     security=PSK, transmission=FAST, request_timeout=10.0)
    await client.start()
    try:
        await client.wait_registered(10)
        await r.register()
        assert server.registrations["lwm2m-dev"].identity == "psk:lwm2m-dev"
        [found] = await rd_lookup(uris(server)["coap"], "ep", [("ep", "secure-node")],
                                  transmission=FAST, timeout=10)
        assert found.get("ep") == "secure-node"
    finally:
        await r.close()
        await client.stop()
