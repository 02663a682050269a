"""Device groups through the Python API (``server.groups``), over real UDP with simulated
and aiocoap devices: membership (static, RD filter, RD group), operations on every member
with a concurrency limit, sleeping members, persistence, and bad definitions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiocoap.numbers.codes import Code as C

from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.groups.limits import GroupLimits
from aiolwm2m.groups.model import GroupBusy, GroupError, UnknownGroup
from aiolwm2m.groups.runs import DONE, ERROR, EXPIRED, NOT_REGISTERED, OK, QUEUED
from aiolwm2m.lwm2m.operations import Operation, ReadRequest, ReadResponse
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.server import LwM2MServer
from aiolwm2m.server.events import NotificationReceived
from aiolwm2m.transport.site import Site
from aiolwm2m.transport.udp import UdpEndpoint
from tests.fake_clock import FakeClock
from tests.server.aiocoap_device import started_device

from .conftest import HOST, fleet_of, group_config, until


async def rd_register(server: LwM2MServer, *registrations: tuple[list[str], bytes]) -> None:
    """Generic RD registrations from a plain CoAP node (a commissioning tool)."""
    node = await UdpEndpoint.create(HOST, 0, site=Site())
    try:
        for query, payload in registrations:
            msg = Message.request(Code.POST, "rd", query=query, payload=payload,
                                  content_format=40)
            answer = await node.request(msg, (HOST, server.port), timeout=10)
            assert answer.code == Code.CREATED, answer.payload
    finally:
        await node.close()


async def test_membership_static_filter_and_rd_group(server: LwM2MServer) -> None:
    fleet = await fleet_of(server, 20)
    try:
        await rd_register(
            server,
            (["ep=meter-000001", "d=plant-1"], b"</v>"),
            (["ep=meter-000002", "d=plant-1"], b"</v>"),
            (["ep=meter-000003", "d=plant-2"], b"</v>"),
            (["ep=ghost", "d=plant-1"], b"</v>"),  # in the RD, not an LwM2M endpoint
            (["ep=lights", "et=core.rd-group", "base=coap://[ff05::1]"],
             b'<>;ep="meter-000010",<>;ep="meter-000011";d="hall",</light>;rt="light"'))
        groups = server.groups
        await groups.put("plant-1", filter="ep=meter-*&d=plant-1")
        assert groups.members("plant-1") == ["meter-000001", "meter-000002"]
        await groups.put("tens", filter=["ep=meter-00001*"])
        assert groups.members("tens") == [f"meter-0000{i}" for i in range(10, 20)]
        await groups.put("mixed", members=["meter-000005", "offline-1"],
                         rd_group=("lights", None), filter="ep=meter-*&d=plant-2")
        assert groups.members("mixed") == ["meter-000005", "offline-1", "meter-000010",
                                           "meter-000011", "meter-000003"]
        assert server.rd is not None
        assert server.rd.group_members("lights") == [("meter-000010", None),
                                                     ("meter-000011", "hall")]
        with pytest.raises(UnknownGroup, match="no group 'nope'"):
            groups.members("nope")
        # The limit cuts a dynamic group, and says so.
        server.groups.limits = GroupLimits(max_members=5)
        assert groups.resolve("tens") == (["meter-000010", "meter-000011", "meter-000012",
                                           "meter-000013", "meter-000014"], True)
    finally:
        await fleet.stop()


async def test_read_on_every_member_with_a_concurrency_limit(server: LwM2MServer) -> None:
    fleet = await fleet_of(server, 60)
    try:
        await server.groups.put("all", members=["absent"], filter="ep=meter-*")
        in_flight: list[int] = []
        holder: list[object] = []
        read = ReadRequest(LwM2MPath(3, 0, 2))

        def op_for(endpoint: str) -> Operation:
            run = holder[0]
            # Asked right before each request goes out; results land when it is answered.
            in_flight.append(len(in_flight) - len(run.results))  # type: ignore[attr-defined]
            return read

        run = server.groups.send("all", op_for, concurrency=4)
        holder.append(run)
        streamed = [r async for r in run.follow()]
        await run.wait()
        assert run.state == DONE and len(run.members) == 61
        assert max(in_flight) <= 4 and max(in_flight) == 3  # 4 in flight incl. this one
        assert run.summary() == {OK: 60, NOT_REGISTERED: 1}
        assert streamed == run.results
        by_ep = {r.endpoint: r for r in run.results}
        assert by_ep["absent"].status == NOT_REGISTERED
        answer = by_ep["meter-000042"].response
        assert isinstance(answer, ReadResponse) and answer.content.value == "meter-000042"  # type: ignore[union-attr]
        # The Python API's shorthand, and a late follower replays everything.
        again = server.groups.read("all", "/3/0/2", concurrency=16)
        await again.wait()
        assert [r.endpoint async for r in again.follow()] == [r.endpoint for r in again.results]
        assert again.operation == "read" and again.path == "/3/0/2"
    finally:
        await fleet.stop()


async def test_write_execute_attributes_and_observe(server: LwM2MServer) -> None:
    fleet = await fleet_of(server, 8)
    events = server.events.stream()
    try:
        await server.groups.put("g", filter="ep=meter-*")
        run = await server.groups.write("g", "/3/0/14", "+02:00").wait()
        assert run.summary() == {OK: 8}, run.results
        check = await server.groups.read("g", "/3/0/14").wait()
        assert {r.response.content.value for r in check.results} == {"+02:00"}  # type: ignore[union-attr]
        # A value the model cannot take fails for each member alone, with the reason.
        bad = await server.groups.write("g", "/3/0/13", "not a time").wait()
        assert {r.status for r in bad.results} == {"failed"}
        assert bad.results[0].detail and "time" in bad.results[0].detail.lower()
        done = await server.groups.execute("g", "/3/0/12").wait()
        assert done.summary() == {OK: 8}
        missing = await server.groups.execute("g", "/3/0/77").wait()
        assert missing.summary() == {ERROR: 8}
        assert missing.results[0].response is not None
        assert missing.results[0].response.code == Code.NOT_FOUND
        attrs = await server.groups.write_attributes("g", "/3303/0/5700", "pmin=0&pmax=1").wait()
        assert attrs.summary() == {OK: 8}
        observed = await server.groups.observe("g", "/3303/0/5700").wait()
        assert observed.summary() == {OK: 8}
        assert sum(len(server.observations.for_registration(r.id))
                   for r in server.registrations.values()) == 8
        seen: set[str] = set()
        while len(seen) < 8:
            ev = await events.next(10)
            if isinstance(ev, NotificationReceived):
                seen.add(ev.registration.endpoint)
        with pytest.raises(GroupError):
            server.groups.execute("g", "/3/0")  # not a resource
        with pytest.raises(GroupError):
            server.groups.read("g", "/3/x")
        with pytest.raises(GroupError):
            server.groups.read("g", "/3", concurrency=0)
    finally:
        await fleet.stop()


async def test_sleeping_members_are_queued(tmp_path: Path, clock: FakeClock) -> None:
    srv = LwM2MServer(group_config(tmp_path, clock, host="::1"))
    await srv.start()
    devices = [await started_device(f"q-{i}") for i in range(3)]
    try:
        uri = f"coap://[::1]:{srv.port}"
        for i, dev in enumerate(devices):
            assert (await dev.register(uri, queue=i > 0)).code == C.CREATED
        clock.advance(31)
        await srv.tick()  # q-1 and q-2 (queue mode) fall asleep; q-0 is always reachable
        await srv.groups.put("q", members=["q-0", "q-1", "q-2"])
        run = srv.groups.read("q", "/3/0/9", queue_ttl=60)
        await until(lambda: run.counts[QUEUED] == 2 and run.counts[OK] == 1)
        assert not run.done
        queued = [r for r in run.results if r.status == QUEUED]
        assert {r.endpoint for r in queued} == {"q-1", "q-2"} and all(r.request_id
                                                                     for r in queued)
        # q-1 wakes: its queued read is delivered and its final result follows.
        assert (await devices[1].update()).code == C.CHANGED
        await until(lambda: run.counts[OK] == 2)
        final_q1 = [r for r in run.results if r.endpoint == "q-1"]
        assert [r.status for r in final_q1] == [QUEUED, OK]
        assert final_q1[1].request_id == final_q1[0].request_id
        # q-2 never wakes: its request expires, and the run is done.
        clock.advance(61)
        await srv.tick()
        await asyncio.wait_for(run.wait(), 10)
        assert run.summary() == {OK: 2, EXPIRED: 1}
        assert [r.status for r in run.results if r.endpoint == "q-2"] == [QUEUED, EXPIRED]
    finally:
        for dev in devices:
            await dev.stop()
        await srv.stop()


async def test_groups_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    srv = LwM2MServer(group_config(tmp_path, clock))
    await srv.start()
    try:
        created = await srv.groups.put("meters", members=["a", "b"], filter="ep=m-*",
                                       rd_group=("lights", "hall"), description="all meters")
        await srv.groups.put("gone", members=["x"])
        assert await srv.groups.remove("gone") is not None
    finally:
        await srv.stop()
    srv = LwM2MServer(group_config(tmp_path, clock))
    await srv.start()
    try:
        assert [g.name for g in srv.groups.all()] == ["meters"]
        assert srv.groups.get("meters") == created
        clock.advance(5)
        replaced = await srv.groups.put("meters", members=["c"])
        assert replaced.created_at == created.created_at
        assert replaced.updated_at == created.updated_at + 5
    finally:
        await srv.stop()


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"name": "has space"}, "group name"),
    ({"name": "x" * 64}, "group name"),
    ({"members": ["a", "a"]}, "listed twice"),
    ({"members": [""]}, "endpoint name"),
    ({"members": ["e" * 256]}, "endpoint name"),
    ({"filter": "ep=a&page=1&count=2"}, "page"),
    ({"filter": "=x"}, "filter"),
    ({"filter": "&".join(f"a{i}=1" for i in range(17))}, "filter"),
    ({"rd_group": ("", None)}, "rd_group.ep"),
    ({"description": "d" * 1025}, "description"),
])
async def test_bad_definitions_store_nothing(server: LwM2MServer, kwargs: dict[str, object],
                                             says: str) -> None:
    name = str(kwargs.pop("name", "g"))
    with pytest.raises(GroupError, match=says):
        await server.groups.put(name, **kwargs)  # type: ignore[arg-type]
    assert server.groups.all() == []


async def test_too_many_members_and_runs(tmp_path: Path, clock: FakeClock) -> None:
    srv = LwM2MServer(group_config(tmp_path, clock, store="memory", group_limits=GroupLimits(
        max_members=3, max_active_runs=1, max_groups=1)))
    await srv.start()
    try:
        with pytest.raises(GroupError, match="more than 3 members"):
            await srv.groups.put("g", members=["a", "b", "c", "d"])
        await srv.groups.put("g", members=["a", "b", "c"])
        with pytest.raises(GroupError, match="1 groups already"):
            await srv.groups.put("h", members=["a"])
        first = srv.groups.read("g", "/3")
        # Started, not run yet (its task has not had a turn): a second one is refused.
        with pytest.raises(GroupBusy):
            srv.groups.read("g", "/3")
        await first.wait()
        assert first.summary() == {NOT_REGISTERED: 3}
        # A cancelled run stops and frees its place.
        second = srv.groups.read("g", "/3")
        assert second.cancel() and second.state == "cancelled" and not second.cancel()
        await asyncio.wait_for(second.wait(), 5)
        third = srv.groups.read("g", "/3")
        await third.wait()
        assert len(srv.groups.runs) == 3
    finally:
        await srv.stop()
