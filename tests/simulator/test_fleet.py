"""The fleet simulator against the aiolwm2m server (and bootstrap server) over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from aiolwm2m.bootstrap import BootstrapServer, BootstrapServerConfig, EndpointConfig
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.lwm2m import LwM2MPath
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.server.events import EventStream, NotificationReceived, SendReceived, Updated
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from aiolwm2m.simulator.device import REGISTERED

QUICK = TransmissionParameters(ack_timeout=0.5, ack_random_factor=1.0, max_retransmit=2)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def next_of(stream: EventStream, kind: type, timeout: float = 5.0) -> object:
    async with asyncio.timeout(timeout):
        while True:
            ev = await stream.next()
            if isinstance(ev, kind):
                return ev


@pytest.fixture
async def server() -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(ServerConfig(host="127.0.0.1", port=0, store="memory",
                                   run_timers=False))
    await srv.start()
    yield srv
    await srv.stop()


async def started(config: FleetConfig) -> Fleet:
    fleet = Fleet(config)
    await fleet.start()
    return fleet


async def test_200_devices_register_answer_reads_observe_and_send(server: LwM2MServer
                                                                  ) -> None:
    events = server.events.stream()
    profile = FleetProfile(send_interval=2.0, sample_period=0.5)
    fleet = await started(FleetConfig(200, f"coap://127.0.0.1:{server.port}", rate=2000,
                                      profile=profile, seed=1, warm_models=0))
    try:
        await until(lambda: fleet.stats.registered == 200)
        assert len(server.registrations) == 200
        # Every device is its own peer: 200 distinct addresses.
        assert len({r.address for r in server.registrations.values()}) == 200
        reg = server.registrations["sim-000042"]
        assert {(o.object_id, o.instance_id) for o in reg.objects} >= {(1, 0), (3, 0),
                                                                         (3303, 0)}
        resp = await server.read("sim-000042", "/3/0/2")
        assert resp.code == Code.CONTENT and resp.content.value == "sim-000042"  # type: ignore[union-attr]
        temp = await server.read("sim-000042", "/3303/0/5700")
        assert isinstance(temp.content.value, float)  # type: ignore[union-attr]
        assert (await server.read("sim-000042", "/0/0")).code == Code.UNAUTHORIZED
        assert (await server.read("sim-000042", "/3/0/77")).code == Code.NOT_FOUND
        # Observe one device; its drifting temperature is notified.
        assert (await server.write_attributes("sim-000007", "/3303/0/5700",
                                              pmin=0, pmax=1)).code == Code.CHANGED
        first = await server.observe("sim-000007", "/3303/0/5700")
        assert first.code == Code.CONTENT
        note = await next_of(events, NotificationReceived)
        assert isinstance(note, NotificationReceived)
        assert note.registration.endpoint == "sim-000007"
        assert fleet.stats.notifications >= 1
        sent = await next_of(events, SendReceived)
        assert isinstance(sent, SendReceived)
        assert LwM2MPath(3303, 0, 5700) in sent.values[0].nodes
        # Devices that were only read keep no object tree (none is kept warm here).
        assert fleet.devices[42].extras is None and fleet.devices[7].extras is not None
    finally:
        await fleet.stop()
    assert fleet.stats.deregistrations == 200
    await until(lambda: not server.registrations)


async def test_recently_read_devices_keep_a_bounded_number_of_trees(server: LwM2MServer
                                                                   ) -> None:
    fleet = await started(FleetConfig(5, f"coap://127.0.0.1:{server.port}", rate=1000,
                                      profile=FleetProfile(send_interval=3600),
                                      warm_models=2))
    try:
        await until(lambda: fleet.stats.registered == 5)
        built = fleet.stats.materialised
        for i in (0, 1, 2, 2, 1):
            resp = await server.read(f"sim-{i:06d}", "/3/0/2")
            assert resp.content.value == f"sim-{i:06d}"  # type: ignore[union-attr]
        # Three trees built; the second reads of 2 and 1 found theirs warm.
        assert fleet.stats.materialised - built == 3
        assert [d.extras is not None for d in fleet.devices] == [
            False, True, True, False, False]
        # A tree that gains state of its own stays when it falls out of the warm set.
        assert (await server.write_attributes("sim-000002", "/3303/0/5700", pmax=60)
                ).code == Code.CHANGED
        for i in (3, 4):
            await server.read(f"sim-{i:06d}", "/3/0/2")
        assert [d.extras is not None for d in fleet.devices] == [
            False, False, True, True, True]
        assert (await server.read("sim-000000", "/3/0/2")).code == Code.CONTENT
        assert [d.extras is not None for d in fleet.devices] == [
            True, False, True, False, True]
    finally:
        await fleet.stop()


async def test_updates_and_server_writes(server: LwM2MServer) -> None:
    events = server.events.stream()
    profile = FleetProfile(lifetime=4, send_interval=3600)
    fleet = await started(FleetConfig(20, f"coap://127.0.0.1:{server.port}", rate=1000,
                                      profile=profile, transmission=QUICK))
    try:
        await until(lambda: fleet.stats.registered == 20)
        ev = await next_of(events, Updated, 6)  # before the 4 s lifetime ends
        assert isinstance(ev, Updated)
        assert (await server.write("sim-000003", "/1/0/1", 60)).code == Code.CHANGED
        await until(lambda: server.registrations["sim-000003"].lifetime == 60)
        assert (await server.execute("sim-000004", "/1/0/8")).code == Code.CHANGED
        assert (await server.write("sim-000004", "/3/0/0", "x")).code == (
            Code.METHOD_NOT_ALLOWED)
        assert fleet.devices[3].lifetime == 60
        assert all(d.state == REGISTERED for d in fleet.devices)
    finally:
        await fleet.stop(deregister=False)


async def test_bootstrapped_fleet(server: LwM2MServer) -> None:
    bs = BootstrapServer(BootstrapServerConfig(host="127.0.0.1", port=0, store="memory"))
    await bs.start()
    await bs.set_config("*", EndpointConfig.for_server(f"coap://127.0.0.1:{server.port}",
                                                       5, lifetime=90))
    fleet = await started(FleetConfig(30, "coap://127.0.0.1:9", f"coap://127.0.0.1:{bs.port}",
                                      rate=1000))
    try:
        await until(lambda: fleet.stats.registered == 30)
        assert fleet.stats.bootstrapped == 30
        assert server.registrations["sim-000011"].lifetime == 90
        assert (await server.read("sim-000011", "/1/0/0")).content.value == 5  # type: ignore[union-attr]
        assert len(await bs.sessions()) == 30
    finally:
        await fleet.stop(deregister=False)
        await bs.stop()


async def test_unreachable_server_backs_off() -> None:
    profile = FleetProfile()
    fleet = await started(FleetConfig(5, "coap://127.0.0.1:9", rate=1000, profile=profile,
                                      transmission=TransmissionParameters(
                                          ack_timeout=0.05, ack_random_factor=1.0,
                                          max_retransmit=1)))
    try:
        await until(lambda: fleet.stats.retrying == 5, 5)
        failures = fleet.stats.failures
        await asyncio.sleep(1.0)
        # The first retry comes after 5 s +- 50 %: nothing more happened meanwhile.
        assert fleet.stats.failures == failures == 5
        assert all(d.wake_at >= fleet.now() + 1.0 for d in fleet.devices)
    finally:
        await fleet.stop(deregister=False)


async def test_ipv6_server_uses_a_socket_per_device() -> None:
    srv = LwM2MServer(ServerConfig(host="::1", port=0, store="memory", run_timers=False))
    await srv.start()
    fleet = await started(FleetConfig(15, f"coap://[::1]:{srv.port}", rate=1000))
    try:
        await until(lambda: fleet.stats.registered == 15)
        assert not fleet.transport.shared
        assert (await srv.read("sim-000014", "/3/0/2")).code == Code.CONTENT
    finally:
        await fleet.stop()
        await srv.stop()


async def test_register_announces_one_format_under_1_1_and_a_list_under_1_2(
        server: LwM2MServer) -> None:
    uri = f"coap://127.0.0.1:{server.port}"
    objects = (b"</1>;ver=1.1,</1/0>,</3>;ver=1.2,</3/0>,</5>;ver=1.2,</5/0>,"
               b"</3303>;ver=1.1,</3303/0>")
    fleet = await started(FleetConfig(3, uri, rate=1000, seed=1))
    try:
        await until(lambda: fleet.stats.registered == 3)
        assert fleet.links == b'</>;rt="oma.lwm2m";ct=110,' + objects
        assert {r.content_formats for r in server.registrations.values()} == {(110,)}
        assert {r.lwm2m_version for r in server.registrations.values()} == {"1.1"}
    finally:
        await fleet.stop(deregister=False)
    cbor = Fleet(FleetConfig(1, uri, content_formats=(112,)))
    assert cbor.links == b'</>;rt="oma.lwm2m";ct=112,' + objects
    listed = Fleet(FleetConfig(1, uri, lwm2m_version="1.2"))
    assert listed.links == b'</>;rt="oma.lwm2m";ct="60 110 112 11542 11543 11544",' + objects
    with pytest.raises(ValueError, match="one preferred"):
        FleetConfig(1, uri, content_formats=(110, 112))
