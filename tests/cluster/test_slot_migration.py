"""A slot migration in Redis Cluster while nodes serve: the slot of a registered device is
moved to another primary key by key (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), as
``redis-cli --cluster reshard`` does, while the device sends Updates, is read through
another node and sends its Register again. Every answer is a success, the registration
ends on the new primary with what the last Update wrote, and the lease still names its
node. A Redis Cluster of its own (the slot moves; the session's cluster stays as it is)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiolwm2m.store.redis_keys import Keys
from aiolwm2m.store.redis_stores import RedisStores
from tests.redis_servers import RedisDeployment, command, require_redis, start_cluster
from tests.server.aiocoap_device import started_device

from .nodes import start_nodes, stop_all

ENDPOINT = "migrant"


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisDeployment]:
    require_redis()
    deployment = start_cluster(tmp_path / "cluster")
    yield deployment
    deployment.stop()


def _primaries(port: int) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """Primary id -> (port, slot ranges), from CLUSTER NODES."""
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for line in command(port, "CLUSTER", "NODES").splitlines():
        parts = line.split()
        if "master" not in parts[2]:
            continue
        ranges = []
        for item in parts[8:]:
            if item.startswith("["):
                continue
            low, _, high = item.partition("-")
            ranges.append((int(low), int(high or low)))
        out[parts[0]] = (int(parts[1].split(":")[1].split("@")[0]), ranges)
    return out


def _holder(port: int, slot: int) -> tuple[str, int]:
    for node_id, (node_port, ranges) in _primaries(port).items():
        if any(low <= slot <= high for low, high in ranges):
            return node_id, node_port
    raise AssertionError(f"no primary serves slot {slot}")


def _move_keys(src: int, dst: int, slot: int, count: int) -> int:
    keys = command(src, "CLUSTER", "GETKEYSINSLOT", str(slot), str(count)).split()
    if keys:
        reply = command(src, "MIGRATE", "127.0.0.1", str(dst), "", "0", "5000", "KEYS", *keys)
        assert reply == "OK", reply
    return len(keys)


def _migrate(src: int, dst: int, src_id: str, dst_id: str, slot: int, entry: int) -> int:
    """Move ``slot`` from src to dst one key per MIGRATE, pausing between keys (the slot
    stays half moved for a while, as in a reshard of a large slot); the keys moved."""
    assert command(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", src_id) == "OK"
    assert command(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", dst_id) == "OK"
    moved = 0
    while step := _move_keys(src, dst, slot, 1):
        moved += step
        time.sleep(0.3)
    for _node_id, (port, _) in _primaries(entry).items():
        assert command(port, "CLUSTER", "SETSLOT", str(slot), "NODE", dst_id) == "OK"
    return moved


async def test_slot_migration_while_serving(own_cluster: RedisDeployment) -> None:
    entry = own_cluster.processes[0].port
    url = own_cluster.url("mig")
    a, b = await start_nodes(url, ["a", "b"])
    device = await started_device(ENDPOINT)
    uri = f"coap://[::1]:{a.server.port}"
    try:
        assert (await device.register(uri, lifetime=300)).code.is_successful()
        keys = Keys("mig")
        slot = int(command(entry, "CLUSTER", "KEYSLOT", keys.registration(ENDPOINT)))
        assert slot == int(command(entry, "CLUSTER", "KEYSLOT", keys.lease(ENDPOINT)))
        src_id, src = _holder(entry, slot)
        dst_id, dst = next((i, p) for i, (p, _) in _primaries(entry).items() if i != src_id)
        migration = asyncio.create_task(asyncio.to_thread(_migrate, src, dst, src_id, dst_id,
                                                          slot, entry))
        lifetime = 300
        rounds = 0
        # While the slot moves key by key, the device updates and is read through b: the
        # scripts meet the slot half here, half there (ASK, TRYAGAIN) and still commit.
        while not migration.done():
            lifetime += 1
            update = await device.update(f"lt={lifetime}")
            assert update.code.is_successful(), update.code
            read = await b.http.get(f"/api/clients/{ENDPOINT}/read", params={"path": "/3/0/2"})
            assert read.status_code == 200, read.text
            rounds += 1
        assert await migration >= 2  # at least the registration row and the lease
        assert rounds >= 2
        assert _holder(entry, slot)[0] == dst_id
        # After the move: an Update, a read through the other node, a Register again.
        lifetime += 1
        assert (await device.update(f"lt={lifetime}")).code.is_successful()
        read = await b.http.get(f"/api/clients/{ENDPOINT}/read", params={"path": "/3/0/2"})
        assert read.status_code == 200, read.text
        stores: RedisStores = a.server.stores  # type: ignore[assignment]
        state = await stores.read_endpoint(ENDPOINT)
        assert state.registration is not None and state.registration.lifetime == lifetime
        assert state.owner == "a"
        assert int(command(dst, "CLUSTER", "COUNTKEYSINSLOT", str(slot))) >= 2
        assert int(command(src, "CLUSTER", "COUNTKEYSINSLOT", str(slot))) == 0
        again = await device.register(uri, lifetime=120)
        assert again.code.is_successful()
        state = await stores.read_endpoint(ENDPOINT)
        assert state.registration is not None and state.registration.lifetime == 120
        assert a.server.store_writer.restarts == 0  # never taken for an outage
    finally:
        await device.stop()
        await stop_all([a, b])
