"""One contract, every store implementation."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiolwm2m.store.interfaces import Stores
from aiolwm2m.store.memory import MemoryStores
from aiolwm2m.store.records import (
    DONE,
    EXPIRED,
    FAILED,
    IN_FLIGHT,
    PENDING,
    ObjectLinkEntry,
    Observation,
    QueuedRequest,
    Registration,
    registration_from_json,
    registration_to_json,
)
from aiolwm2m.store.redis_stores import RedisStores
from aiolwm2m.store.sqlite import SQLiteStores

Factory = Callable[[pytest.FixtureRequest, Path], Awaitable[Stores]]


async def memory(_: pytest.FixtureRequest, __: Path) -> Stores:
    return MemoryStores()


async def sqlite(_: pytest.FixtureRequest, tmp: Path) -> Stores:
    return await SQLiteStores.open(tmp / "db.sqlite3")


async def redis(request: pytest.FixtureRequest, _: Path) -> Stores:
    # A namespace of its own in the session's Redis (started on first use).
    return await RedisStores.open(request.getfixturevalue("redis_standalone").url())


async def redis_cluster(request: pytest.FixtureRequest, _: Path) -> Stores:
    return await RedisStores.open(request.getfixturevalue("redis_cluster").url())


@pytest.fixture(params=[memory, sqlite, redis, redis_cluster],
                ids=["memory", "sqlite", "redis", "redis-cluster"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    s = await request.param(request, tmp_path)
    yield s
    await s.close()


def reg(rid: str, ep: str, **kw: object) -> Registration:
    base: dict[str, object] = dict(
        id=rid, endpoint=ep, address=("127.0.0.1", 5000), lifetime=60, lwm2m_version="1.1",
        links='</1>;ver=1.1,</3/0>', objects=(ObjectLinkEntry(1, None, "1.1"),
                                              ObjectLinkEntry(3, 0)),
        content_formats=(110, 112), registered_at=100.0, updated_at=100.0,
        extra=(("pid", "x"),))
    base.update(kw)
    return Registration(**base)  # type: ignore[arg-type]


async def test_registrations(stores: Stores) -> None:
    r = stores.registrations
    assert await r.add(reg("a", "ep1")) is None
    assert await r.add(reg("b", "ep2")) is None
    assert (await r.get("a")) == reg("a", "ep1")
    assert (await r.get_by_endpoint("ep2")) == reg("b", "ep2")
    assert await r.count() == 2
    # Re-registering an endpoint replaces its registration.
    replaced = await r.add(reg("c", "ep1", lifetime=99))
    assert replaced == reg("a", "ep1")
    assert await r.get("a") is None
    assert (await r.get_by_endpoint("ep1")) == reg("c", "ep1", lifetime=99)
    await r.update(reg("c", "ep1", lifetime=5, updated_at=200.0))
    got = await r.get("c")
    assert got is not None and got.lifetime == 5 and got.expires_at == 205.0
    with pytest.raises(KeyError):
        await r.update(reg("zz", "nope"))
    assert (await r.remove("c")) is not None
    assert await r.remove("c") is None
    assert await r.get_by_endpoint("ep1") is None
    assert [x.id for x in await r.all()] == ["b"]


async def test_writes_without_waiting(stores: Stores) -> None:
    r = stores.registrations
    old, commit = r.add_nowait(reg("a", "ep1"))
    assert old is None
    assert await r.get("a") == reg("a", "ep1")  # visible before it is durable
    if commit is not None:
        await commit
    old, _ = r.add_nowait(reg("b", "ep1"))
    assert old == reg("a", "ep1")
    commit = r.update_nowait(reg("b", "ep1", lifetime=7))
    assert (await r.get("b")) == reg("b", "ep1", lifetime=7)
    if commit is not None:
        await commit
    with pytest.raises(KeyError):
        r.update_nowait(reg("zz", "nope"))


async def test_sqlite_commit_of_a_write_without_waiting_is_durable(tmp_path: Path) -> None:
    s = await SQLiteStores.open(tmp_path / "db.sqlite3")
    _, first = s.registrations.add_nowait(reg("a", "ep1"))
    second = s.registrations.update_nowait(reg("a", "ep1", lifetime=9, updated_at=300.0))
    assert first is not None and second is not None
    await asyncio.gather(first, second)
    # Read the file through another connection while the store is still open: what the
    # commit acknowledged is on disk, in the row form registration_from_json reads.
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite3")) as conn:
        (data,) = conn.execute("SELECT data FROM registrations WHERE id='a'").fetchone()
    assert registration_from_json(data) == reg("a", "ep1", lifetime=9, updated_at=300.0)
    assert data == registration_to_json(reg("a", "ep1", lifetime=9, updated_at=300.0))
    await s.close()


async def test_observations(stores: Stores) -> None:
    o = stores.observations
    a = Observation(b"t1", "r1", "ep", ("/3/0/13",), False, 11542, 1.0)
    b = Observation(b"t2", "r1", "ep", ("/3/0/0", "/3/0/9"), True, 112, 2.0)
    c = Observation(b"t3", "r2", "ep2", ("/3303/0/5700",))
    for x in (a, b, c):
        await o.add(x)
    assert await o.get(b"t2") == b
    assert sorted(x.token for x in await o.for_registration("r1")) == [b"t1", b"t2"]
    assert await o.remove(b"t1") == a
    assert await o.remove(b"t1") is None
    assert await o.remove_for_registration("r1") == [b]
    assert await o.for_registration("r1") == []
    assert await o.all() == [c]


async def test_queue(stores: Stores) -> None:
    q = stores.queue
    for i, ep in enumerate(["ep", "ep", "other", "ep"]):
        await q.push(QueuedRequest(f"q{i}", ep, {"op": "read", "path": f"/3/0/{i}"},
                                   created_at=float(i), expires_at=10.0 + i))
    pending = await q.pending("ep")
    assert [p.id for p in pending] == ["q0", "q1", "q3"]
    assert [p.sequence for p in pending] == sorted(p.sequence for p in pending)
    assert await q.depth() == 4
    done = await q.finish("q1", DONE, {"code": "2.05", "value": 3}, at=5.0)
    assert done is not None and done.state == DONE and done.result == {"code": "2.05",
                                                                       "value": 3}
    assert [p.id for p in await q.pending("ep")] == ["q0", "q3"]
    assert [p.id for p in await q.expired(12.0)] == ["q0", "q2"]
    await q.finish("q0", EXPIRED, None, at=12.0)
    got = await q.get("q0")
    assert got is not None and got.state == EXPIRED
    assert await q.depth() == 2
    assert await q.purge_finished(before=6.0) == 1  # q1 finished at 5.0
    assert await q.get("q1") is None
    assert await q.finish("missing", DONE, None, 1.0) is None
    assert (await q.get("q3")) is not None and (await q.get("q3")).state == PENDING  # type: ignore[union-attr]


async def test_queue_in_flight(stores: Stores) -> None:
    q = stores.queue
    for rid in ("a", "b"):
        await q.push(QueuedRequest(rid, "ep", {"op": "execute"}, 1.0, 100.0,
                                   at_most_once=True))
    started = await q.start("a", at=2.0)
    assert started is not None and started.state == IN_FLIGHT and started.started_at == 2.0
    assert started.at_most_once
    # In flight: neither pending, nor expirable, nor purged, and not started twice.
    assert [r.id for r in await q.pending("ep")] == ["b"]
    assert [r.id for r in await q.expired(1000.0)] == ["b"]
    assert await q.depth() == 1
    assert await q.start("a", at=3.0) is None
    assert await q.start("missing", at=3.0) is None
    assert await q.purge_finished(before=1000.0) == 0
    assert [r.id for r in await q.in_flight()] == ["a"]
    done = await q.finish("a", DONE, {"code": "2.04"}, at=4.0)
    assert done is not None and done.state == DONE and done.started_at == 2.0
    assert await q.in_flight() == []
    await q.finish("b", EXPIRED, None, at=5.0)
    assert await q.start("b", at=6.0) is None  # only pending requests start


async def test_sqlite_in_flight_survives_reopen(tmp_path: Path) -> None:
    s = await SQLiteStores.open(tmp_path / "db.sqlite3")
    await s.queue.push(QueuedRequest("amo", "ep", {"op": "execute"}, 1.0, 100.0,
                                     at_most_once=True))
    await s.queue.push(QueuedRequest("alo", "ep", {"op": "execute"}, 1.0, 100.0))
    await s.queue.start("amo", at=2.0)
    await s.close()
    s2 = await SQLiteStores.open(tmp_path / "db.sqlite3")
    assert [(r.id, r.state, r.at_most_once) for r in await s2.queue.in_flight()] == [
        ("amo", IN_FLIGHT, True)]
    assert [r.id for r in await s2.queue.pending("ep")] == ["alo"]
    await s2.queue.finish("amo", FAILED, {"outcome": "unknown"}, at=3.0)
    await s2.close()


def test_queued_request_rows_of_earlier_versions_load() -> None:
    old = {"id": "q", "ep": "ep", "op": {"op": "read"}, "created": 1.0, "expires": 2.0,
           "state": PENDING, "result": None, "finished": None, "seq": 3}
    r = QueuedRequest.from_dict(old)
    assert (r.at_most_once, r.started_at, r.sequence) == (False, None, 3)
    assert QueuedRequest.from_dict(r.to_dict()) == r


async def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    s = await SQLiteStores.open(tmp_path / "db.sqlite3")
    await s.registrations.add(reg("a", "ep1"))
    await s.registrations.add(reg("b", "ep1"))  # replaces a
    await s.observations.add(Observation(b"t", "b", "ep1", ("/3/0",)))
    await s.queue.push(QueuedRequest("q", "ep1", {"op": "read"}, 1.0, 2.0))
    await s.queue.push(QueuedRequest("q2", "ep1", {"op": "read"}, 1.0, 2.0))
    await s.queue.finish("q", DONE, {"ok": True}, 1.5)
    await s.close()
    s2 = await SQLiteStores.open(tmp_path / "db.sqlite3")
    assert [r.id for r in await s2.registrations.all()] == ["b"]
    assert (await s2.registrations.get("b")) == reg("b", "ep1")
    assert [o.token for o in await s2.observations.all()] == [b"t"]
    assert [r.id for r in await s2.queue.pending("ep1")] == ["q2"]
    q = await s2.queue.get("q")
    assert q is not None and q.result == {"ok": True}
    await s2.queue.push(QueuedRequest("q3", "ep1", {"op": "read"}, 1.0, 2.0))
    assert [r.id for r in await s2.queue.pending("ep1")] == ["q2", "q3"]
    await s2.close()


async def test_sqlite_group_commit(tmp_path: Path) -> None:
    s = await SQLiteStores.open(tmp_path / "db.sqlite3")
    assert isinstance(s, SQLiteStores)
    await asyncio.gather(*(s.registrations.add(reg(f"id{i}", f"ep{i}")) for i in range(2000)))
    # Far fewer commits than writes: concurrent writes share transactions.
    assert s.writer.statements == 2000
    assert s.writer.commits < 200
    await s.close()


async def test_security(stores: Stores) -> None:
    from aiolwm2m.store.records import SecurityInfo

    s = stores.security
    psk = SecurityInfo("ep1", psk_identity=b"id-1", psk_key=b"\x01" * 16)
    rpk = SecurityInfo("ep2", rpk_public_key=b"\x30\x59spki")
    x509 = SecurityInfo("ep3", x509_identity="CN=ep3")
    for info in (psk, rpk, x509):
        assert await s.put(info) is None
    assert s.get("ep1") == psk and psk.mode == "psk" and x509.mode == "x509"
    assert s.find_psk(b"id-1") == psk and s.find_psk(b"nope") is None
    assert s.find_rpk(b"\x30\x59spki") == rpk
    assert s.find_x509("CN=ep3") == x509
    with pytest.raises(ValueError):
        await s.put(SecurityInfo("other", psk_identity=b"id-1", psk_key=b"k"))
    newer = SecurityInfo("ep1", psk_identity=b"id-2", psk_key=b"\x02" * 16)
    assert await s.put(newer) == psk
    assert s.find_psk(b"id-1") is None and s.find_psk(b"id-2") == newer
    assert await s.remove("ep2") == rpk
    assert s.find_rpk(b"\x30\x59spki") is None
    assert [i.endpoint for i in await s.all()] == ["ep1", "ep3"]
    with pytest.raises(ValueError):
        SecurityInfo("bad")
    with pytest.raises(ValueError):
        SecurityInfo("bad", psk_identity=b"x", x509_identity="y")


async def test_sqlite_security_survives_reopen(tmp_path: Path) -> None:
    from aiolwm2m.store.records import SecurityInfo

    s = await SQLiteStores.open(tmp_path / "db.sqlite3")
    await s.security.put(SecurityInfo("ep1", psk_identity=b"id", psk_key=b"key"))
    await s.close()
    s2 = await SQLiteStores.open(tmp_path / "db.sqlite3")
    assert s2.security.find_psk(b"id") == SecurityInfo("ep1", psk_identity=b"id",
                                                       psk_key=b"key")
    await s2.close()


def test_registration_with_changes_covers_every_field() -> None:
    base = reg("a", "ep1")
    new_values: dict[str, object] = {
        "id": "b", "endpoint": "ep2", "address": ("10.0.0.1", 1), "lifetime": 5,
        "lwm2m_version": "1.0", "binding": "T", "queue_mode": True, "sms": "123",
        "transport": "tcp", "identity": "psk-id", "links": "</3/0>",
        "objects": (ObjectLinkEntry(3, 0),), "root_path": "/lwm2m", "content_formats": (11542,),
        "registered_at": 1.0, "updated_at": 2.0, "extra": (("x", "y"),)}
    assert set(new_values) == {f.name for f in dataclasses.fields(Registration)}
    for name, value in new_values.items():
        changed = base.with_changes(**{name: value})
        assert getattr(changed, name) == value
        assert changed == dataclasses.replace(base, **{name: value})
    with pytest.raises(TypeError):
        base.with_changes(nonsense=1)
