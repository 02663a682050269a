"""Group operations at scale, without devices to slow them: a fan-out over 20,000 members
holds as many coroutines as its concurrency allows, not one per member; a slow or vanished
result subscriber costs nothing; and the number of runs is bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiolwm2m.groups.limits import GroupLimits
from aiolwm2m.groups.model import GroupBusy
from aiolwm2m.lwm2m.operations import Operation, ReadRequest
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.server import LwM2MServer
from tests.fake_clock import FakeClock
from tests.groups.conftest import group_config


async def test_fanout_holds_concurrency_tasks_not_members(tmp_path: Path) -> None:
    srv = LwM2MServer(group_config(tmp_path, FakeClock(), store="memory", group_limits=(
        GroupLimits(max_members=20_000, max_active_runs=2, kept_runs=1))))
    await srv.start()
    try:
        await srv.groups.put("many", members=[f"ghost-{i}" for i in range(20_000)])
        baseline = len(asyncio.all_tasks())
        seen: list[int] = []
        read = ReadRequest(LwM2MPath(3, 0, 0))

        def op_for(endpoint: str) -> Operation:
            if len(seen) % 500 == 0:
                seen.append(len(asyncio.all_tasks()))
            else:
                seen.append(-1)
            return read

        run = srv.groups.send("many", op_for, concurrency=16)
        # A subscriber that never reads, and one that goes away: neither holds results.
        idle = run.follow()
        gone = run.follow()
        await anext(gone)
        await gone.aclose()
        await asyncio.wait_for(run.wait(), 30)
        assert run.summary() == {"not-registered": 20_000}
        assert max(seen) <= baseline + 16 + 2  # the run's task and its 16 workers
        await idle.aclose()
        # Runs are bounded: two at once at most; finished ones beyond kept_runs go.
        first = srv.groups.read("many", "/3/0/0")
        second = srv.groups.read("many", "/3/0/0")
        with pytest.raises(GroupBusy):
            srv.groups.read("many", "/3/0/0")
        await first.wait()
        await second.wait()
        srv.groups.read("many", "/3/0/0")
        assert len(srv.groups.runs) <= 1 + 1  # the running one and one kept
    finally:
        await srv.stop()
