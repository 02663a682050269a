"""Three server nodes as deployed: separate ``aiolwm2m server --node-id`` processes on a
3-primary Redis Cluster, behind Debian's nginx (stream module) hashing CoAP datagrams on the
source address (:mod:`aiolwm2m.cluster.deployment`, what ``aiolwm2m cluster-demo`` runs).

- a device registered through nginx lands on one node, is read through another, observed
  through the second with its notifications reaching the SSE of the third;
- the node owning a share of 1,000 simulated devices (and three sleeping queue-mode devices
  with acknowledged queued requests) is SIGKILLed while devices register and REST reads
  run: the devices come back through the other nodes, every acknowledged registration is
  there and every queued request is sent by the node its device wakes on.

The tests are synchronous (one run each: the nodes are processes with their own loop) and
share one deployment per module. Without nginx they fail in CI and are skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiolwm2m.client.backoff import RetryPolicy
from aiolwm2m.cluster.deployment import STREAM_MODULE, Deployment
from aiolwm2m.coap.params import TransmissionParameters
from aiolwm2m.simulator import Fleet, FleetConfig, FleetProfile
from tests.redis_servers import require_redis
from tests.server.aiocoap_device import AiocoapDevice, started_device
from tests.web.sse_client import SseReader

TOKEN = "nginx-cluster-token"
#: A device whose node died gives up on a Register after 7 s and tries again.
QUICK = TransmissionParameters(ack_timeout=1.0, ack_random_factor=1.0, max_retransmit=2)
#: Devices retry a failed Register soon (the default waits 5 s and more).
SOON = RetryPolicy(initial=0.5, maximum=2.0, jitter=0.2, attempts_before_fallback=0)
FLEET = 1000


def require_nginx() -> None:
    if (shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists()) or (
            not STREAM_MODULE.exists()):
        message = "nginx with its stream module not found (scripts/setup.sh test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_redis()
    require_nginx()
    deployed = Deployment(tmp_path_factory.mktemp("nginx-cluster"), nodes=3,
                          redis_primaries=3, token=TOKEN, node_ttl=3.0,
                          node_flags=["--awake-time", "1"])
    deployed.start()
    yield deployed
    deployed.stop()


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=60,
                             headers={"Authorization": f"Bearer {TOKEN}"})


def fleet(uri: str, count: int, prefix: str, *, rate: float = 2000,
          sample_period: float = 5.0) -> Fleet:
    return Fleet(FleetConfig(count, uri, rate=rate, seed=7, transmission=QUICK,
                             profile=FleetProfile(endpoint_prefix=prefix, lifetime=300,
                                                  sample_period=sample_period, retry=SOON,
                                                  deregister_on_stop=False)))


async def until(predicate: object, timeout: float = 60.0, what: str = "") -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # type: ignore[operator]
            await asyncio.sleep(0.1)


def test_register_on_one_node_read_through_another_sse_on_a_third(
        deployment: Deployment) -> None:
    asyncio.run(_across_nodes(deployment))


async def _across_nodes(deployment: Deployment) -> None:
    devices = fleet(deployment.coap_uri, 12, "lb-", sample_period=0.2)
    await devices.start()
    try:
        async with asyncio.timeout(30):
            while devices.stats.registered < 12:
                await asyncio.sleep(0.05)
        owners = {f"lb-{i:06d}": deployment.owner_of(f"lb-{i:06d}") for i in range(12)}
        by_name = {s.name: s for s in deployment.servers}
        assert set(owners.values()) <= set(by_name)
        # Hashing the source address spreads the devices over the nodes.
        assert len(set(owners.values())) >= 2, owners
        endpoint, owner = next(iter(owners.items()))
        second, third = [s for s in deployment.servers if s.name != owner]
        async with client(second.http_url) as via, client(third.http_url) as other:
            sse = SseReader(third.http_url, TOKEN)
            await sse.open({"endpoint": endpoint})
            try:
                read = await via.get(f"/api/clients/{endpoint}/read", params={"path": "/3/0/2"})
                assert read.status_code == 200, read.text
                assert read.json()["content"] == endpoint
                attrs = await via.post(f"/api/clients/{endpoint}/write-attributes",
                                       json={"path": "/3303/0/5700",
                                             "set": {"pmin": 0, "pmax": 1}})
                assert attrs.status_code == 200, attrs.text
                observed = await via.post(f"/api/clients/{endpoint}/observe",
                                          json={"path": "/3303/0/5700"})
                assert observed.status_code == 200 and observed.json()["code"] == "2.05"
                async with asyncio.timeout(30):
                    await sse.read_until(lambda r: any(n == "notification"
                                                       for n, _ in r.events))
                note = next(d for n, d in sse.events if n == "notification")
                assert note["endpoint"] == endpoint and note["paths"] == ["/3303/0/5700"]
            finally:
                await sse.close()
            # The same read through nginx's REST port, whichever node it lands on.
            async with client(deployment.http_url) as lb:
                for _ in range(3):
                    again = await lb.get(f"/api/clients/{endpoint}/read",
                                         params={"path": "/3/0/2"})
                    assert again.status_code == 200, again.text
            listed = await other.get("/api/registrations", params={"endpoint": endpoint})
            assert [r["endpoint"] for r in listed.json()["items"]] == [endpoint]
    finally:
        await devices.stop(deregister=True)


def test_owner_sigkilled_under_load_nothing_acknowledged_lost(deployment: Deployment) -> None:
    asyncio.run(_failover(deployment))


async def _failover(deployment: Deployment) -> None:
    coap6 = f"coap://[::1]:{deployment.coap_port}"
    sleepers = [await started_device(f"sleeper-{i}") for i in range(3)]
    devices = fleet(deployment.coap_uri, FLEET, "fo-", rate=500)
    load: asyncio.Task[dict[int, int]] | None = None
    try:
        for s in sleepers:
            assert (await s.register(coap6, queue=True)).code.is_successful()
        # They all come from ::1, so one node holds them: that node is the one killed.
        owners = {deployment.owner_of(s.endpoint) for s in sleepers}
        assert len(owners) == 1
        (victim_name,) = owners
        assert victim_name is not None
        victim = next(s for s in deployment.servers if s.name == victim_name)
        survivor = next(s for s in deployment.servers if s.name != victim_name)
        await asyncio.sleep(1.5)  # past --awake-time: asleep
        queued: dict[str, str] = {}
        async with client(survivor.http_url) as api:
            for s in sleepers:
                resp = await api.get(f"/api/clients/{s.endpoint}/read",
                                     params={"path": "/3/0/2"})
                assert resp.status_code == 202, resp.text  # acknowledged: queued in Redis
                queued[s.endpoint] = resp.json()["request_id"]
        await devices.start()
        async with asyncio.timeout(60):
            while devices.stats.registered < FLEET // 2:
                await asyncio.sleep(0.02)
        load = asyncio.create_task(_reads(deployment.http_url, devices))
        await asyncio.sleep(0.5)
        victim.kill()  # under load: registrations and routed reads in flight
        async with asyncio.timeout(120):
            while devices.stats.registered < FLEET:
                await asyncio.sleep(0.1)
        # Every device's next Update: those of the dead node fail (or are refused by the
        # node nginx now picks, the address it sees being new) and register again there.
        await asyncio.sleep(3.5)  # the dead node's heartbeat has expired
        for device in devices.devices:
            devices.request_update(device)
        alive = [s for s in deployment.servers if s is not victim]
        expected = {f"fo-{i:06d}" for i in range(FLEET)} | set(queued)

        async def listed() -> set[str]:
            async with client(alive[0].http_url) as api:
                page = (await api.get("/api/registrations",
                                      params={"limit": 1000})).json()
                names = {r["endpoint"] for r in page["items"]}
                if page["total"] > 1000:
                    more = (await api.get("/api/registrations",
                                          params={"limit": 1000, "offset": 1000})).json()
                    names |= {r["endpoint"] for r in more["items"]}
                return names

        # The sleepers wake: an Update (retransmitted until nginx, having seen the dead
        # node refuse, picks another; refused there: the address it sees is new), then a
        # Register.
        async def wake(sleeper: AiocoapDevice) -> None:
            if not (await sleeper.update()).code.is_successful():
                assert (await sleeper.register(coap6, queue=True)).code.is_successful()

        await asyncio.gather(*(wake(s) for s in sleepers))

        async def all_back() -> bool:
            return (await listed()) >= expected

        await until(all_back, 150)
        assert {deployment.owner_of(ep) for ep in random.sample(sorted(expected), 50)} <= {
            s.name for s in alive}
        # Every queued request was sent by the node its device woke on.
        async with client(deployment.http_url) as lb:
            async def sent() -> bool:
                states = [(await lb.get(f"/api/requests/{rid}")).json()
                          for rid in queued.values()]
                return all(st["state"] == "done" for st in states)

            await until(sent, 90)
            for rid in queued.values():
                done = (await lb.get(f"/api/requests/{rid}")).json()
                assert done["result"]["code"] == "2.05", done
            for s in sleepers:
                assert ("GET", "/3/0/2") in s.requests
            # A device of the dead node, read through any node, answers.
            moved = sorted(ep for ep in expected if ep.startswith("fo-"))[:5]
            for ep in moved:
                read = await lb.get(f"/api/clients/{ep}/read", params={"path": "/3/0/2"})
                assert read.status_code == 200, read.text
        statuses = await load
        # Reads went on through the kill: answered with the value, or (a device of the dead
        # node, before it came back) with an error status, never anything else.
        assert statuses.get(200, 0) > 0, statuses
        assert set(statuses) <= {0, 200, 404, 502, 503, 504}, statuses
    finally:
        if load is not None and not load.done():
            load.cancel()
        await devices.stop(deregister=False)
        for s in sleepers:
            await s.stop()
        # The module's deployment is whole again for whatever runs next.
        for server in deployment.servers:
            if server.proc is not None and server.proc.poll() is not None:
                server.start()


async def _reads(url: str, devices: Fleet, seconds: float = 6.0) -> dict[int, int]:
    """REST reads of devices through nginx's REST port while a node dies (0 counts a read
    that got no HTTP answer in time)."""
    statuses: dict[int, int] = {}
    rng = random.Random(3)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    async with client(url) as lb:
        while loop.time() < deadline:
            index = rng.randrange(FLEET)
            try:
                resp = await lb.get(f"/api/clients/fo-{index:06d}/read",
                                    params={"path": "/3/0/2", "timeout": "3"}, timeout=15)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
            await asyncio.sleep(0.01)
    return statuses
