"""Device ownership between nodes: two nodes claiming one device at once (one lease wins),
a device taken over by the node it now talks to (its observations with it), fencing (a node
that lost a device cannot overwrite it), a dead node's devices served by the node a REST
request reaches, expired by a sweep, and resumed by the node when it comes back. Real
redis-server processes (a 3-primary Cluster), real nodes in this process, real devices
(aiocoap and the simulator)."""

from __future__ import annotations

import asyncio

import pytest

from aiolwm2m.server.events import Expired
from aiolwm2m.store.redis_keys import SLOTS
from aiolwm2m.store.redis_stores import EndpointState, RedisStores
from aiolwm2m.store.redis_writer import RedisWriteFailed
from tests.redis_servers import RedisDeployment
from tests.server.aiocoap_device import started_device

from .nodes import fleet_for, start_node, start_nodes, stop_all, until


def uri(node: object) -> str:
    return f"coap://[::1]:{node.server.port}"  # type: ignore[attr-defined]


async def lease_of(stores: RedisStores, endpoint: str) -> str | None:
    value = await stores.writer.client.get(stores.keys.lease(endpoint))
    return value.decode() if value is not None else None


async def test_concurrent_claims_of_a_free_lease_one_wins(redis_cluster: RedisDeployment
                                                          ) -> None:
    url = redis_cluster.url()
    stores = [await RedisStores.open(url, node=f"n{i}") for i in range(5)]
    try:
        for round_ in range(10):
            endpoint = f"contested-{round_}"
            results = await asyncio.gather(*(s.claim(EndpointState(endpoint, None, ""))
                                             for s in stores for _ in range(4)))
            winners = {s.node for s, r in zip([s for s in stores for _ in range(4)], results,
                                              strict=True) if r is None}
            assert len(winners) == 1  # the other 19 claims were told who holds it
            (winner,) = winners
            assert {r for r in results if r is not None} == {winner}
            assert await lease_of(stores[0], endpoint) == winner
    finally:
        for s in stores:
            await s.close()


async def test_two_nodes_serving_one_dead_nodes_device_at_once(redis_cluster: RedisDeployment
                                                               ) -> None:
    a, b, c = await start_nodes(redis_cluster.url(), ["a", "b", "c"])
    device = await started_device("orphan")
    try:
        assert (await device.register(uri(a))).code.is_successful()
        await a.stop()  # a clean stop: its heartbeat goes at once, its leases stay
        await until(lambda: "a" not in b.cluster.membership.alive)
        await c.cluster.membership.beat()
        # b and c are asked for the device at the same moment: one takes it over (from
        # the dead node, compare-and-set), the other routes to it.
        reads = await asyncio.gather(*(n.http.get("/api/clients/orphan/read",
                                                  params={"path": "/3/0/2"})
                                       for n in (b, c)))
        assert [r.status_code for r in reads] == [200, 200], [r.text for r in reads]
        assert [r.json()["content"] for r in reads] == ["SN-0001", "SN-0001"]
        holders = [n for n in (b, c) if "orphan" in n.server.registrations]
        assert len(holders) == 1
        (holder,) = holders
        other = c if holder is b else b
        assert holder.cluster.ownership.adopted == 1 and other.cluster.ownership.adopted == 0
        assert other.cluster.routed_out == 1
        stores: RedisStores = holder.server.stores  # type: ignore[assignment]
        assert await lease_of(stores, "orphan") == holder.name
    finally:
        await device.stop()
        await stop_all([b, c])


async def test_two_nodes_taking_registers_of_one_endpoint_at_once(
        redis_cluster: RedisDeployment) -> None:
    a, b = await start_nodes(redis_cluster.url(), ["a", "b"])
    first, second = await started_device("twin"), await started_device("twin")
    try:
        for _ in range(5):
            answers = await asyncio.gather(first.register(uri(a)), second.register(uri(b)))
            assert all(r.code.is_successful() for r in answers)
            stores: RedisStores = a.server.stores  # type: ignore[assignment]
            # Whichever Register came second holds the endpoint; the other node let it go.
            await until(lambda: sum("twin" in n.server.registrations for n in (a, b)) == 1)
            holder = a if "twin" in a.server.registrations else b
            assert await lease_of(stores, "twin") == holder.name
            row = await stores.read_endpoint("twin")
            assert row.registration is not None
            assert row.registration.id == holder.server.registrations["twin"].id
    finally:
        await first.stop()
        await second.stop()
        await stop_all([a, b])


async def test_a_device_updating_through_another_node_moves_there(
        redis_cluster: RedisDeployment) -> None:
    a, b = await start_nodes(redis_cluster.url(), ["a", "b"])
    device = await started_device("mover")
    try:
        assert (await device.register(uri(a))).code.is_successful()
        observed = await a.http.post("/api/clients/mover/observe",
                                     json={"path": "/3303/0/5700"})
        assert observed.json()["code"] == "2.05", observed.text
        registration_id = a.server.registrations["mover"].id
        # The same device (same address) now talks to b: b takes it over.
        device.server_uri = uri(b)
        assert (await device.update()).code.is_successful()
        assert b.server.registrations["mover"].id == registration_id
        await until(lambda: "mover" not in a.server.registrations)
        stores: RedisStores = b.server.stores  # type: ignore[assignment]
        assert await lease_of(stores, "mover") == "b"
        # Its observation came along: b routes the device's notifications now.
        assert [r.paths for r in b.server.observations.for_registration(registration_id)] == [
            ("/3303/0/5700",)]
        assert not len(a.server.observations)
        # Fencing: a, had it not heard, could not write the registration any more.
        old = (await stores.read_endpoint("mover")).registration
        assert old is not None
        a_stores: RedisStores = a.server.stores  # type: ignore[assignment]
        a_stores.registrations._add(old)
        with pytest.raises(RedisWriteFailed, match="NOTOWNER b"):
            await a_stores.registrations.update(old.with_changes(lifetime=9999))
        assert (await stores.read_endpoint("mover")).registration.lifetime == old.lifetime  # type: ignore[union-attr]
        assert not a_stores.registrations._by_endpoint  # and it let go
        # A request from somewhere else does not move it back.
        hijacker = await started_device("mover")
        hijacker.server_uri, hijacker.location = uri(a), device.location
        assert (await hijacker.update()).code == 132  # 4.04
        assert await lease_of(stores, "mover") == "b"
        await hijacker.stop()
    finally:
        await device.stop()
        await stop_all([a, b])


async def test_a_dead_nodes_registrations_expire_by_sweep(redis_cluster: RedisDeployment
                                                          ) -> None:
    a, b = await start_nodes(redis_cluster.url(), ["a", "b"])
    device = await started_device("short-lived")
    try:
        assert (await device.register(uri(a), lifetime=1)).code.is_successful()
        await a.stop()
        await until(lambda: "a" not in b.cluster.membership.alive)
        events = b.server.events.stream()
        await asyncio.sleep(1.2)
        assert await b.cluster.sweeper.sweep(range(SLOTS)) == 1
        expired = await asyncio.wait_for(events.next(), 5)
        assert isinstance(expired, Expired) and expired.registration.endpoint == "short-lived"
        stores: RedisStores = b.server.stores  # type: ignore[assignment]
        state = await stores.read_endpoint("short-lived")
        assert state.registration is None and state.owner == ""
        assert await b.cluster.sweeper.sweep(range(SLOTS)) == 0
    finally:
        await device.stop()
        await stop_all([b])


async def test_a_restarted_node_carries_on_with_its_devices(redis_cluster: RedisDeployment
                                                            ) -> None:
    url = redis_cluster.url()
    a, b = await start_nodes(url, ["a", "b"])
    fleet = fleet_for(a.coap, 4)
    await fleet.start()
    try:
        await until(lambda: fleet.stats.registered == 4)
        port = a.server.port
        await a.stop()
        again = await start_node(url, "a", port=port)
        assert set(again.server.registrations) == {f"sim-{i:06d}" for i in range(4)}
        assert not b.server.registrations
        resp = await b.http.get("/api/clients/sim-000001/read", params={"path": "/3/0/2"})
        assert resp.status_code == 200 and b.cluster.routed_out == 1
        await stop_all([again])
    finally:
        await fleet.stop(deregister=False)
        await stop_all([b])


async def test_a_node_remembering_the_old_owner_is_sent_on_to_the_new_one(
        redis_cluster: RedisDeployment) -> None:
    a, b, c = await start_nodes(redis_cluster.url(), ["a", "b", "c"])
    device = await started_device("wanderer")
    try:
        assert (await device.register(uri(a))).code.is_successful()
        first = await b.http.get("/api/clients/wanderer/read", params={"path": "/3/0/2"})
        assert first.status_code == 200 and a.cluster.routed_in == 1  # b remembers a
        device.server_uri = uri(c)
        assert (await device.update()).code.is_successful()
        await until(lambda: "wanderer" not in a.server.registrations)
        # b still remembers a: a answers 421 naming c, and b routes there.
        again = await b.http.get("/api/clients/wanderer/read", params={"path": "/3/0/2"})
        assert again.status_code == 200, again.text
        assert again.json()["content"] == "SN-0001"
        assert a.cluster.routed_in == 2 and c.cluster.routed_in == 1
        # Now b remembers c: straight there.
        third = await b.http.get("/api/registrations/wanderer")
        assert third.status_code == 200 and third.json()["endpoint"] == "wanderer"
        assert (a.cluster.routed_in, c.cluster.routed_in) == (2, 2)
    finally:
        await device.stop()
        await stop_all([a, b, c])


async def test_a_stopping_node_lets_its_stream_readers_end_rather_than_cancelling_them(
        redis_cluster: RedisDeployment) -> None:
    """A cancelled blocking XREAD could be held by redis-py's cluster client past the end
    of the event loop, which then waited for it forever (a hung full test run). Readers are
    told to stop and end after their current XREAD; a node that leaves has its event
    reader end the same way."""
    a, b, c = await start_nodes(redis_cluster.url(), ["a", "b", "c"])
    try:
        await until(lambda: len(a.cluster.events._readers) == 2)
        events = a.cluster.events
        readers = [a.cluster.bus._reader, *events._readers.values()]
        await c.stop()
        await until(lambda: "c" not in a.cluster.events._readers, timeout=15)
    finally:
        await stop_all([a, b])
    assert all(r is not None and r.done() and not r.cancelled() for r in readers)
    assert not events._retiring
