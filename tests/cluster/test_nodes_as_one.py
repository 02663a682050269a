"""Several server nodes on one Redis namespace serve as one: a device registered on one node is
read through another (routed to its owner and back), the registration list and one
registration come from any node, events of every node reach every node's SSE, queued
requests are sent by whichever node the device wakes on, credentials changed on one node
are used by the others. Real redis-server processes, real nodes (in this process, each with
its CoAP listener and REST API on real sockets) and simulated devices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.redis_servers import RedisDeployment
from tests.server.aiocoap_device import started_device
from tests.web.sse_client import SseReader

from .nodes import TOKEN, Node, fleet_for, start_nodes, stop_all, until


def uri(node: Node) -> str:
    return f"coap://[::1]:{node.server.port}"


@pytest.fixture(params=["redis_standalone", "redis_cluster"], ids=["redis", "redis-cluster"])
def deployment(request: pytest.FixtureRequest) -> RedisDeployment:
    value: RedisDeployment = request.getfixturevalue(request.param)
    return value


@pytest.fixture
async def three(redis_cluster: RedisDeployment) -> AsyncIterator[list[Node]]:
    """Three nodes on the Redis Cluster (the case where every multi-key change must stay in
    one slot); the first test runs on a standalone Redis too."""
    nodes = await start_nodes(redis_cluster.url(), ["a", "b", "c"])
    yield nodes
    await stop_all(nodes)


async def test_registered_on_one_node_read_through_another(
        deployment: RedisDeployment) -> None:
    three = await start_nodes(deployment.url(), ["a", "b", "c"])
    try:
        await _read_through_another(three)
    finally:
        await stop_all(three)


async def _read_through_another(three: list[Node]) -> None:
    a, b, c = three
    fleet = fleet_for(a.coap, 5)
    await fleet.start()
    try:
        await until(lambda: fleet.stats.registered == 5)
        assert set(a.server.registrations) == {f"sim-{i:06d}" for i in range(5)}
        assert not b.server.registrations and not c.server.registrations
        resp = await b.http.get("/api/clients/sim-000003/read", params={"path": "/3/0/2"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["content"] == "sim-000003"
        assert (b.cluster.routed_out, a.cluster.routed_in) == (1, 1)
        # The owner keeps the device; nothing moved.
        assert not b.server.registrations and "sim-000003" in a.server.registrations
        # One registration, and the list, from any node.
        one = await c.http.get("/api/registrations/sim-000001")
        assert one.status_code == 200 and one.json()["endpoint"] == "sim-000001"
        listed = await c.http.get("/api/registrations", params={"limit": 2, "offset": 1})
        assert listed.status_code == 200
        page = listed.json()
        assert page["total"] == 5
        assert [r["endpoint"] for r in page["items"]] == ["sim-000001", "sim-000002"]
        # An unknown device is a plain 404 wherever it is asked for.
        missing = await b.http.get("/api/clients/nobody/read", params={"path": "/3/0"})
        assert missing.status_code == 404
    finally:
        await fleet.stop()


async def test_notifications_of_one_node_reach_the_sse_of_a_third(three: list[Node]) -> None:
    a, b, c = three
    reader = SseReader(c.web.url, TOKEN)
    await reader.open()
    fleet = fleet_for(a.coap, 2, sample_period=0.2)
    await fleet.start()
    try:
        # Registered at a, announced on c.
        await reader.read_until(lambda r: sum(1 for n, _ in r.events
                                              if n == "registered") == 2)
        await until(lambda: fleet.stats.registered == 2)
        attrs = await b.http.post("/api/clients/sim-000001/write-attributes",
                                  json={"path": "/3303/0/5700", "set": {"pmin": 0, "pmax": 1}})
        assert attrs.status_code == 200 and attrs.json()["code"] == "2.04", attrs.text
        observed = await b.http.post("/api/clients/sim-000001/observe",
                                     json={"path": "/3303/0/5700"})
        assert observed.status_code == 200 and observed.json()["code"] == "2.05"
        # Observed through b, held by a (the device's node), notified to c's subscriber.
        assert len(a.server.observations) == 1 and not len(b.server.observations)
        await reader.read_until(lambda r: any(n == "notification" for n, _ in r.events))
        note = next(d for n, d in reader.events if n == "notification")
        assert note["endpoint"] == "sim-000001" and note["paths"] == ["/3303/0/5700"]
        assert isinstance(note["content"], float)
        # Filtered by endpoint on c as well.
        only = SseReader(c.web.url, TOKEN)
        await only.open({"endpoint": "sim-000000"})
        await b.http.get("/api/clients/sim-000000/read", params={"path": "/3/0/0"})
        await b.http.post("/api/clients/sim-000000/observe", json={"path": "/3/0/13"})
        await only.close()
    finally:
        await reader.close()
        await fleet.stop()
    # The last subscriber gone, the other nodes stop publishing.
    await until(lambda: not a.cluster.events.watchers and not b.cluster.events.watchers)


async def test_a_queued_request_is_sent_by_the_node_the_device_wakes_on(
        redis_cluster: RedisDeployment) -> None:
    nodes = await start_nodes(redis_cluster.url(), ["a", "b", "c"], awake_time=0.3)
    a, b, c = nodes
    device = await started_device("sleepy")
    try:
        resp = await device.register(uri(a), queue=True)
        assert resp.code.is_successful()
        await until(lambda: not a.server.queue.is_awake(a.server.registration("sleepy")))
        queued = await b.http.get("/api/clients/sleepy/read", params={"path": "/3/0/2"})
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["request_id"]
        # Found by id on any node, pending.
        pending = await c.http.get(f"/api/requests/{request_id}")
        assert pending.status_code == 200 and pending.json()["state"] == "pending"
        # The device wakes through c (same address: the lease follows the device).
        device.server_uri = uri(c)
        assert (await device.update()).code.is_successful()
        assert "sleepy" in c.server.registrations
        await until(lambda: "sleepy" not in a.server.registrations)
        async def state() -> str:
            return str((await a.http.get(f"/api/requests/{request_id}")).json()["state"])
        async with asyncio.timeout(20):
            while await state() != "done":
                await asyncio.sleep(0.05)
        done = (await b.http.get(f"/api/requests/{request_id}")).json()
        assert done["result"]["code"] == "2.05"
        assert ("GET", "/3/0/2") in device.requests
        # c holds it now: REST through a is routed to c.
        assert (await a.http.get("/api/clients/sleepy/read",
                                 params={"path": "/3/0/2"})).status_code in (200, 202)
        assert c.cluster.routed_in >= 1
    finally:
        await device.stop()
        await stop_all(nodes)


async def test_credentials_changed_on_one_node_are_used_by_the_others(
        three: list[Node]) -> None:
    a, _b, c = three
    put = await a.http.put("/api/security/dev-psk",
                           json={"psk_identity": "dev-psk-id", "psk_key": "00112233"})
    assert put.status_code == 200, put.text
    await until(lambda: all(n.server.stores.security.find_psk(b"dev-psk-id") is not None
                            for n in three))
    assert c.server.stores.security.get("dev-psk") is not None
    gone = await c.http.delete("/api/security/dev-psk")
    assert gone.status_code == 204
    await until(lambda: all(n.server.stores.security.get("dev-psk") is None for n in three))


async def test_cluster_view_and_metrics_per_node_and_in_total(three: list[Node]) -> None:
    a, b, c = three
    fleet = fleet_for(a.coap, 3)
    await fleet.start()
    try:
        await until(lambda: fleet.stats.registered == 3)
        resp = await b.http.get("/api/clients/sim-000002/read", params={"path": "/3/0/2"})
        assert resp.status_code == 200
        for node in three:  # the heartbeats carry the figures the others total
            await node.cluster.membership.beat()
        view = (await c.http.get("/api/cluster")).json()
        assert view["node"] == "c"
        per_node = {n["node"]: n["registrations"] for n in view["nodes"]}
        assert per_node == {"a": 3, "b": 0, "c": 0}
        assert view["totals"]["registrations"] == 3
        assert view["totals"]["routed_out"] == 1 and view["totals"]["routed_in"] == 1
        text = (await b.http.get("/metrics")).text
        assert "lwm2m_cluster_nodes 3.0" in text
        assert 'lwm2m_cluster_node_registrations{node="a"} 3.0' in text
        assert "lwm2m_cluster_registrations 3.0" in text
        assert 'lwm2m_cluster_routed_requests_total{direction="out"} 1.0' in text
    finally:
        await fleet.stop()
