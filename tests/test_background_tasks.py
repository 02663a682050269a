"""Background work: kept alive until done, cancelled together, failures logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiolwm2m.background_tasks import BackgroundTasks

log = logging.getLogger("tests.background")


async def test_work_runs_and_is_forgotten_when_done() -> None:
    tasks = BackgroundTasks(log, "test work")
    done = asyncio.Event()

    async def work() -> None:
        done.set()

    tasks.spawn(work())
    assert len(tasks) == 1
    await asyncio.wait_for(done.wait(), 1)
    await asyncio.sleep(0)
    assert len(tasks) == 0


async def test_cancel_all_stops_what_is_still_running() -> None:
    tasks = BackgroundTasks(log, "test work")
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks.spawn(forever())
    tasks.spawn(forever())
    await asyncio.sleep(0)
    tasks.cancel_all()
    for _ in range(3):  # the cancellation, then the done callbacks
        await asyncio.sleep(0)
    assert cancelled.is_set() and len(tasks) == 0


async def test_a_failure_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks(log, "test work")

    async def fails() -> None:
        raise ValueError("broken")

    with caplog.at_level(logging.ERROR, logger="tests.background"):
        tasks.spawn(fails())
        for _ in range(3):
            await asyncio.sleep(0)
    [record] = caplog.records
    assert record.getMessage() == "test work failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
