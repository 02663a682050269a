"""What the Redis stores add to the contract: their key layout (one slot per endpoint, slot
buckets, the id index, credential claims), reopening, group commit, scripts Redis forgot,
and Redis lost and back (held writes, convergence, nothing acknowledged lost). Real
redis-server processes (tests/redis_servers.py): standalone and a 3-primary Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.store.bootstrap_store import (
    FINISHED,
    REFUSED,
    BootstrapConfigRecord,
    BootstrapSessionRecord,
)
from aiolwm2m.store.records import (
    DONE,
    IN_FLIGHT,
    ObjectLinkEntry,
    Observation,
    QueuedRequest,
    Registration,
    SecurityInfo,
)
from aiolwm2m.store.redis_bootstrap import RedisBootstrapStores
from aiolwm2m.store.redis_connect import RedisTarget, StoreOpenError
from aiolwm2m.store.redis_keys import key_slot, queue_member, slot_tag
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.redis_writer import RedisWriteFailed
from aiolwm2m.store.selection import check_store, describe_store
from aiolwm2m.store.sqlite_writer import WRITER_OK, WRITER_RESTARTING
from tests.redis_servers import RedisDeployment, RedisProcess, command, free_port


def reg(rid: str, ep: str, **kw: Any) -> Registration:
    base: dict[str, Any] = dict(
        id=rid, endpoint=ep, address=("127.0.0.1", 5000), lifetime=60, lwm2m_version="1.1",
        links="</1>;ver=1.1,</3/0>", objects=(ObjectLinkEntry(1, None, "1.1"),
                                              ObjectLinkEntry(3, 0)),
        content_formats=(110, 112), registered_at=100.0, updated_at=100.0)
    base.update(kw)
    return Registration(**base)


@pytest.fixture(params=["redis_standalone", "redis_cluster"], ids=["redis", "redis-cluster"])
def deployment(request: pytest.FixtureRequest) -> RedisDeployment:
    value: RedisDeployment = request.getfixturevalue(request.param)
    return value


@pytest.fixture
async def stores(deployment: RedisDeployment) -> AsyncIterator[RedisStores]:
    s = await RedisStores.open(deployment.url())
    yield s
    await s.close()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_everything_survives_reopen(deployment: RedisDeployment) -> None:
    url = deployment.url()
    s = await RedisStores.open(url)
    await s.registrations.add(reg("a", "ep1"))
    await s.registrations.add(reg("b", "ep1"))  # replaces a
    await s.registrations.add(reg("c", "ep2"))
    await s.registrations.update(reg("c", "ep2", lifetime=5, updated_at=200.0))
    await s.observations.add(Observation(b"\x01t", "b", "ep1", ("/3/0",), True, 112, 3.0))
    await s.queue.push(QueuedRequest("q", "ep1", {"op": "read"}, 1.0, 50.0))
    await s.queue.push(QueuedRequest("q2", "ep1", {"op": "read"}, 1.0, 50.0))
    await s.queue.push(QueuedRequest("amo", "ep2", {"op": "execute"}, 1.0, 50.0,
                                     at_most_once=True))
    await s.queue.finish("q", DONE, {"ok": True}, 1.5)
    await s.queue.start("amo", at=2.0)
    await s.security.put(SecurityInfo("ep1", psk_identity=b"id-1", psk_key=b"k" * 16))
    await s.security.put(SecurityInfo("ep2", x509_identity="CN=ep2"))
    await s.close()

    s2 = await RedisStores.open(url)
    try:
        assert sorted(r.id for r in await s2.registrations.all()) == ["b", "c"]
        assert await s2.registrations.get_by_endpoint("ep1") == reg("b", "ep1")
        assert await s2.registrations.get("c") == reg("c", "ep2", lifetime=5,
                                                       updated_at=200.0)
        assert await s2.observations.all() == [
            Observation(b"\x01t", "b", "ep1", ("/3/0",), True, 112, 3.0)]
        assert [r.id for r in await s2.queue.pending("ep1")] == ["q2"]
        assert [(r.id, r.state) for r in await s2.queue.in_flight()] == [("amo", IN_FLIGHT)]
        done = await s2.queue.get("q")
        assert done is not None and done.result == {"ok": True}
        await s2.queue.push(QueuedRequest("q3", "ep1", {"op": "read"}, 1.0, 50.0))
        assert [r.id for r in await s2.queue.pending("ep1")] == ["q2", "q3"]
        assert s2.security.find_psk(b"id-1") == SecurityInfo(
            "ep1", psk_identity=b"id-1", psk_key=b"k" * 16)
        assert s2.security.find_x509("CN=ep2") is not None
    finally:
        await s2.close()


async def test_bootstrap_stores_survive_reopen(deployment: RedisDeployment) -> None:
    url = deployment.url()
    s = await RedisBootstrapStores.open(url)
    config = {"servers": [{"instance_id": 0, "short_server_id": 1}]}
    await s.configs.put(BootstrapConfigRecord("ep", config, 1.0))
    await s.configs.put(BootstrapConfigRecord("*", {"delete": ["/0"]}, 2.0))
    await s.sessions.save(BootstrapSessionRecord("x", "ep", "h:1", 1.0))
    await s.sessions.save(BootstrapSessionRecord("y", "ep", "h:1", 1.0, state=FINISHED))
    for i in range(3):
        await s.sessions.save(BootstrapSessionRecord(f"r{i}", f"bad{i}", "h:1", 2.0 + i,
                                                     state=REFUSED, reason="bootstrap-nosec"))
    assert await s.sessions.trim(REFUSED, 1) == 2
    await s.close()
    again = await RedisBootstrapStores.open(url)
    try:
        assert [r.endpoint for r in await again.configs.all()] == ["*", "ep"]
        assert (await again.configs.get("ep")) == BootstrapConfigRecord("ep", config, 1.0)
        # Same start time: the order they were saved in decides.
        assert [r.id for r in await again.sessions.for_endpoint("ep")] == ["x", "y"]
        assert [r.id for r in await again.sessions.recent()] == ["r2", "y", "x"]
        await again.sessions.save(BootstrapSessionRecord("z", "ep", "h:1", 1.0))
        assert [r.id for r in await again.sessions.for_endpoint("ep")] == ["x", "y", "z"]
    finally:
        await again.close()


async def test_an_endpoint_lives_in_one_slot_with_its_buckets(stores: RedisStores) -> None:
    client, keys = stores.writer.client, stores.keys
    # Braces in the name: the tag ends at the first '}', for every key of the endpoint.
    ep = "}urn:dev:{odd}"
    await stores.registrations.add(reg("r1", ep, lifetime=30, updated_at=1000.0))
    await stores.observations.add(Observation(b"tok", "r1", ep, ("/3/0",)))
    await stores.queue.push(QueuedRequest("q1", ep, {"op": "read"}, 1.0, 77.0))
    await stores.security.put(SecurityInfo(ep, psk_identity=b"odd", psk_key=b"k"))
    row_key, expiry_key = keys.registration_keys(ep)
    names = [row_key, expiry_key, keys.endpoint(ep, "o"), keys.endpoint(ep, "q"),
             keys.endpoint(ep, "s"), keys.queue_expiry(ep)]
    assert len({key_slot(k) for k in names}) == 1
    assert await client.zscore(expiry_key, ep) == 1030.0
    assert await client.zscore(keys.queue_expiry(ep), queue_member(ep, "q1")) == 77.0
    assert await client.hget(keys.id_index("r1"), "r1") == ep.encode()
    assert await client.get(keys.psk_claim(b"odd")) == ep.encode()
    # A new registration of the endpoint takes the row; the old id leaves the index.
    await stores.registrations.add(reg("r2", ep, lifetime=40, updated_at=1000.0))
    assert await client.hget(keys.id_index("r1"), "r1") is None
    assert await client.hget(keys.id_index("r2"), "r2") == ep.encode()
    assert await client.zscore(expiry_key, ep) == 1040.0
    # Removing an id that is no longer the endpoint's leaves the current one alone.
    assert await stores.registrations.remove("r2") is not None
    assert await client.exists(row_key) == 0
    assert await client.zscore(expiry_key, ep) is None
    assert await client.hget(keys.id_index("r2"), "r2") is None
    await stores.queue.finish("q1", DONE, None, 2.0)
    assert await client.zscore(keys.queue_expiry(ep), queue_member(ep, "q1")) is None


async def test_slots_are_computed_as_redis_does(redis_cluster: RedisDeployment) -> None:
    s = await RedisStores.open(redis_cluster.url())
    try:
        client, keys = s.writer.client, s.keys
        samples = [keys.registration("ep"), keys.registration("}x"), keys.registration(""),
                   keys.registration("a}b"), keys.psk_claim(b"\x00\xff"),
                   keys.x509_claim("CN=}{"), "plain", "{}", "a{}b", "{a}{b}"]
        samples += [keys.bucket(slot, "rx") for slot in (0, 1, 5461, 10922, 16383)]
        for key in samples:
            assert await client.cluster_keyslot(key) == key_slot(key), key
        assert all(key_slot(f"x:{{{slot_tag(n)}}}:y") == n for n in range(0, 16384, 97))
    finally:
        await s.close()


async def test_writes_of_one_loop_iteration_share_a_pipeline(stores: RedisStores) -> None:
    commits, statements = stores.writer.commits, stores.writer.statements
    futures = {stores.registrations.add_nowait(reg(f"id{i}", f"ep{i}"))[1]
               for i in range(2000)}
    assert len(futures) == 1  # one batch, one future
    await asyncio.gather(*(f for f in futures if f is not None))
    assert stores.writer.statements - statements == 4000  # row+bucket script, id index
    assert stores.writer.commits - commits <= 2  # 5,000 commands a pipeline at most


async def test_credential_claims_hold_across_stores(deployment: RedisDeployment) -> None:
    url = deployment.url()
    a, b = await RedisStores.open(url), await RedisStores.open(url)
    try:
        await a.security.put(SecurityInfo("ep1", psk_identity=b"id-1", psk_key=b"k"))
        # b has not loaded ep1's credentials: Redis's claim refuses, b takes nothing.
        with pytest.raises(ValueError, match="ep1"):
            await b.security.put(SecurityInfo("other", psk_identity=b"id-1", psk_key=b"k"))
        assert b.security.get("other") is None and b.security.find_psk(b"id-1") is None
        # A claim left by a crash (its owner's row does not hold it) is taken over.
        await b.writer.client.set(b.keys.psk_claim(b"id-9"), "ghost")
        await b.security.put(SecurityInfo("ep9", psk_identity=b"id-9", psk_key=b"k"))
        assert await b.writer.client.get(b.keys.psk_claim(b"id-9")) == b"ep9"
        # Changing ep1's identity releases id-1.
        await a.security.put(SecurityInfo("ep1", psk_identity=b"id-2", psk_key=b"k"))
        assert await a.writer.client.get(a.keys.psk_claim(b"id-1")) is None
        await b.security.put(SecurityInfo("other", psk_identity=b"id-1", psk_key=b"k"))
        assert await a.security.remove("ep1") is not None
        assert await a.writer.client.get(a.keys.psk_claim(b"id-2")) is None
    finally:
        await a.close()
        await b.close()


async def test_scripts_redis_forgot_are_loaded_again(deployment: RedisDeployment,
                                                     stores: RedisStores) -> None:
    await stores.registrations.add(reg("a", "ep1"))
    for p in deployment.processes:  # what a restarted Redis has forgotten
        assert command(p.port, "SCRIPT", "FLUSH") == "OK"
    # Endpoints spread over every primary of a Cluster.
    await asyncio.gather(*(stores.registrations.add(reg(f"n{i}", f"new{i}"))
                           for i in range(50)))
    client = stores.writer.client
    assert all([await client.get(stores.keys.registration(f"new{i}")) for i in range(50)])


async def test_redis_lost_and_back(private_redis: RedisProcess) -> None:
    url = private_redis.url + "?namespace=outage"
    s = await RedisStores.open(url, restart_delay_min=0.05, restart_delay_max=0.2,
                               hold_timeout=0.3)
    try:
        await s.registrations.add(reg("a", "ep1"))  # acknowledged
        private_redis.kill()
        _, commit = s.registrations.add_nowait(reg("b", "ep2"))
        assert commit is not None
        with pytest.raises(RedisWriteFailed, match="not acknowledged"):
            await commit
        assert s.writer.state == WRITER_RESTARTING and s.writer.last_error
        # What the server does with a write that failed: take it back (held meanwhile).
        s.registrations.remove_nowait("b")
        # A write made during the outage: its caller hears after hold_timeout, but the
        # write itself stays queued.
        with pytest.raises(RedisWriteFailed, match="stays queued"):
            await s.observations.add(Observation(b"t", "a", "ep1", ("/3/0",)))
        private_redis.start()  # same port, same AOF
        await until(lambda: s.writer.state == WRITER_OK)
        assert s.writer.restarts == 1
        await s.registrations.add(reg("c", "ep3"))
    finally:
        await s.close()
    again = await RedisStores.open(url)
    try:
        # Nothing acknowledged lost; the failed write taken back; the held one applied.
        assert sorted(r.id for r in await again.registrations.all()) == ["a", "c"]
        assert [o.token for o in await again.observations.all()] == [b"t"]
    finally:
        await again.close()


async def test_writes_beyond_the_hold_bound_fail_at_once(private_redis: RedisProcess) -> None:
    s = await RedisStores.open(private_redis.url, restart_delay_min=5.0, max_held=4,
                               hold_timeout=30.0)
    try:
        private_redis.kill()
        _, first = s.registrations.add_nowait(reg("a", "ep1"))  # 2 commands
        assert first is not None
        with pytest.raises(RedisWriteFailed):
            await first
        held = s.writer.submit([("SET", "k1", "1"), ("SET", "k2", "2")])
        refused = s.writer.submit([("SET", "k3", "3")])
        assert refused.done() and isinstance(refused.exception(), RedisWriteFailed)
        assert s.writer.dropped == 1 and not held.done()
    finally:
        await s.close()  # one last attempt fails: what is held fails, and is logged
    assert held.done() and isinstance(held.exception(), RedisWriteFailed)


async def test_unreachable_redis_is_one_clear_line() -> None:
    port = free_port()
    with pytest.raises(StoreOpenError) as caught:
        await RedisStores.open(f"redis://:s3cret@127.0.0.1:{port}")
    message = str(caught.value)
    assert message.startswith(f"cannot reach Redis at 127.0.0.1:{port}: ")
    assert "\n" not in message and "s3cret" not in message
    with pytest.raises(StoreOpenError, match="cannot reach Redis"):
        await RedisBootstrapStores.open(f"redis+cluster://127.0.0.1:{port}")


async def test_a_cluster_node_named_as_one_redis_is_refused(redis_cluster: RedisDeployment
                                                            ) -> None:
    with pytest.raises(StoreOpenError, match=r"use redis\+cluster://"):
        await RedisStores.open(f"redis://{redis_cluster.address}")


def test_store_urls() -> None:
    t = RedisTarget.parse("redis://user:p%40ss@db.example:6380/2?namespace=site-a")
    assert (t.host, t.port, t.db, t.username, t.password, t.namespace, t.cluster) == (
        "db.example", 6380, 2, "user", "p@ss", "site-a", False)
    assert t.describe() == "redis://db.example:6380/2 (namespace site-a)"
    c = RedisTarget.parse("redis+cluster://[::1]:7000")
    assert c.cluster and c.address == "[::1]:7000" and c.namespace == "lwm2m"
    for bad, why in [("redis://host", "HOST:PORT"), ("redis://h:99999", "port"),
                     ("redis://h:1/x", "database"), ("redis+cluster://h:1/3", "database 0"),
                     ("redis://h:1?ns=x", "unknown"), ("redis://h:1?namespace=a{b}", "namespace"),
                     ("rediss://h:1", "redis://")]:
        with pytest.raises(ValueError, match=why):
            RedisTarget.parse(bad)
    assert check_store("redis://h:1") == "redis://h:1"
    with pytest.raises(ValueError, match="store must be"):
        check_store("postgres")
    assert describe_store("redis://:secret@h:1", Path(".")) == "redis://h:1"
